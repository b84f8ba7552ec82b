/**
 * Prometheus metrics: the standard gRPC server series (as go-grpc-prometheus names them), the domain
 * series `introspect_*`, and the default process/Node metrics, in a registry of its own (so several
 * servers can live in one process, as in tests). `interceptor()` feeds the gRPC series for every call.
 */
import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { statusName } from './errors';

type GrpcLabels = 'grpc_type' | 'grpc_service' | 'grpc_method';

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export function grpcType(requestStream: boolean, responseStream: boolean): GrpcType {
  if (requestStream) return responseStream ? 'bidi_stream' : 'client_stream';
  return responseStream ? 'server_stream' : 'unary';
}

/** "/introspect.v1.ModelService/LoadModel" → ["introspect.v1.ModelService", "LoadModel"]. */
export function splitMethodPath(p: string): [string, string] {
  const m = /^\/([^/]+)\/([^/]+)$/.exec(p);
  return m ? [m[1]!, m[2]!] : ['unknown', p];
}

/** Model names that get a label of their own; the label set stays bounded whatever clients load. */
export const MAX_MODEL_LABELS = 50;
export const OTHER_MODELS = '_other';

/** Whether a grpc-js deadline (ms since the epoch, a Date, or Infinity for none) has passed. */
function deadlinePassed(deadline: number | Date): boolean {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && at <= Date.now();
}

export class ServerMetrics {
  readonly registry = new Registry();
  readonly started: Counter<GrpcLabels>;
  readonly handled: Counter<GrpcLabels | 'grpc_code'>;
  readonly handlingSeconds: Histogram<GrpcLabels>;
  readonly msgSent: Counter<GrpcLabels>;
  readonly msgReceived: Counter<GrpcLabels>;
  readonly modelsLoaded: Gauge;
  readonly cacheHits: Counter<'cache'>;
  readonly cacheMisses: Counter<'cache'>;
  readonly imagesComputed: Counter<'kind'>;
  readonly engineSeconds: Histogram<'engine' | 'operation' | 'model'>;
  readonly waitSeconds: Histogram<'resource'>;
  readonly cacheBytes: Gauge<'cache'>;
  readonly cacheCapacityBytes: Gauge<'cache'>;
  readonly memoryBudgetBytes: Gauge;
  private readonly caches = new Map<string, () => { bytes: number; capacityBytes: number }>();
  private readonly modelLabels = new Set<string>();
  readonly deviceInfo: Gauge<'engine' | 'device' | 'backend'>;
  readonly deviceFallbacks: Counter<'engine' | 'requested'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const grpcLabels: GrpcLabels[] = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.started = new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames: grpcLabels,
      registers,
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...grpcLabels, 'grpc_code'],
      registers,
    });
    this.handlingSeconds = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC calls handled by the server.',
      labelNames: grpcLabels,
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 60, 300, 1800],
      registers,
    });
    this.msgSent = new Counter({
      name: 'grpc_server_msg_sent_total',
      help: 'Total number of gRPC stream messages sent by the server.',
      labelNames: grpcLabels,
      registers,
    });
    this.msgReceived = new Counter({
      name: 'grpc_server_msg_received_total',
      help: 'Total number of RPC stream messages received on the server.',
      labelNames: grpcLabels,
      registers,
    });
    this.modelsLoaded = new Gauge({
      name: 'introspect_models_loaded',
      help: 'Models currently held in the model cache.',
      registers,
    });
    this.cacheHits = new Counter({
      name: 'introspect_cache_hits_total',
      help: 'Cache lookups answered from the cache, by cache.',
      labelNames: ['cache'],
      registers,
    });
    this.cacheMisses = new Counter({
      name: 'introspect_cache_misses_total',
      help: 'Cache lookups that had to compute or load, by cache.',
      labelNames: ['cache'],
      registers,
    });
    this.imagesComputed = new Counter({
      name: 'introspect_images_computed_total',
      help: 'Images computed (class averages, neuron images, predictions, evaluated images), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.engineSeconds = new Histogram({
      name: 'introspect_engine_seconds',
      help: `Time spent in engine calls, by engine, operation (forward, activations, attribute) and model (the first ${MAX_MODEL_LABELS} model names; later ones are "${OTHER_MODELS}").`,
      labelNames: ['engine', 'operation', 'model'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30, 120],
      registers,
    });
    this.waitSeconds = new Histogram({
      name: 'introspect_wait_seconds',
      help: 'Time a piece of work waited for a resource before it ran, by resource (engine: a free onnxruntime worker). Heavy slots are never waited for: beyond the bound a call is refused (introspect_heavy_streams_refused_total).',
      labelNames: ['resource'],
      buckets: [0.0001, 0.001, 0.01, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    const caches = this.caches;
    this.cacheBytes = new Gauge({
      name: 'introspect_cache_bytes',
      help: 'Bytes held by each cache (models: files and weights; averages, similarity: results).',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, read] of caches) this.set({ cache }, read().bytes);
      },
    });
    this.cacheCapacityBytes = new Gauge({
      name: 'introspect_cache_capacity_bytes',
      help: 'The bound on each cache (models: --cache-bytes).',
      labelNames: ['cache'],
      registers,
      collect() {
        for (const [cache, read] of caches) this.set({ cache }, read().capacityBytes);
      },
    });
    this.memoryBudgetBytes = new Gauge({
      name: 'introspect_memory_budget_bytes',
      help: 'The memory budget of one request (estimates above it are refused before allocating).',
      registers,
    });
    this.deviceInfo = new Gauge({
      name: 'introspect_device_info',
      help: 'Where each engine runs: 1 for the engine, device and backend in use.',
      labelNames: ['engine', 'device', 'backend'],
      registers,
    });
    this.deviceFallbacks = new Counter({
      name: 'introspect_device_fallbacks_total',
      help: 'Times an engine fell back from the requested device to the CPU, by engine and requested device.',
      labelNames: ['engine', 'requested'],
      registers,
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** Reports a cache's bytes and bound at every scrape. */
  watchCache(cache: string, read: () => { bytes: number; capacityBytes: number }): void {
    this.caches.set(cache, read);
  }

  /** The model label of a model name: its own for the first MAX_MODEL_LABELS names seen, then OTHER_MODELS. */
  modelLabel(name: string): string {
    if (this.modelLabels.has(name)) return name;
    if (this.modelLabels.size >= MAX_MODEL_LABELS) return OTHER_MODELS;
    this.modelLabels.add(name);
    return name;
  }

  /** Times an engine call. */
  async timeEngine<T>(engine: string, operation: string, model: string, work: () => Promise<T>): Promise<T> {
    const end = this.engineSeconds.startTimer({ engine, operation, model: this.modelLabel(model) });
    try {
      return await work();
    } finally {
      end();
    }
  }

  /** A grpc-js server interceptor counting starts, messages, completions (by code) and latency. */
  interceptor(): ServerInterceptor {
    return (method, call) => {
      const [grpc_service, grpc_method] = splitMethodPath(method.path);
      const labels = { grpc_type: grpcType(method.requestStream, method.responseStream), grpc_service, grpc_method };
      const startedAt = process.hrtime.bigint();
      let finished = false;
      const finish = (code: number): void => {
        if (finished) return;
        finished = true;
        this.handled.inc({ ...labels, grpc_code: statusName(code) });
        this.handlingSeconds.observe(labels, Number(process.hrtime.bigint() - startedAt) / 1e9);
      };
      this.started.inc(labels);
      const listener = new ServerListenerBuilder()
        .withOnReceiveMessage((message, next) => {
          this.msgReceived.inc(labels);
          next(message);
        })
        // A call cancelled because its deadline passed is the client's deadline, not a cancellation.
        .withOnCancel(() => finish(deadlinePassed(call.getDeadline()) ? status.DEADLINE_EXCEEDED : status.CANCELLED))
        .build();
      const responder = new ResponderBuilder()
        .withStart((next) => next(listener))
        .withSendMessage((message, next) => {
          this.msgSent.inc(labels);
          next(message);
        })
        .withSendStatus((st, next) => {
          finish(st.code);
          next(st);
        })
        .build();
      return new ServerInterceptingCall(call, responder);
    };
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
