/**
 * A bound on concurrent heavy server streams (the analysis sweeps and Evaluate): beyond it a call is
 * answered RESOURCE_EXHAUSTED, naming the limit, before it reaches its handler. A slot is held from
 * the call's metadata until its status goes out or it is cancelled.
 *
 *   const heavy = new HeavyStreamLimiter(4);
 *   new Server({ interceptors: [metrics.interceptor(), heavy.interceptor()] });
 */
import { ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from '@grpc/grpc-js';
import { Counter, Gauge, type Registry } from 'prom-client';

export const HEAVY_METHODS: ReadonlySet<string> = new Set([
  '/introspect.v1.ModelService/Evaluate',
  '/introspect.v1.AnalysisService/ClassAverages',
  '/introspect.v1.AnalysisService/NeuronImages',
  '/introspect.v1.AnalysisService/Similarity',
  '/introspect.v1.AnalysisService/DatasetExamples',
  '/introspect.v1.AnalysisService/SanityCheck',
  '/introspect.v1.AnalysisService/Prune',
  '/introspect.v1.AnalysisService/LayerProbes',
  // Unary, but it computes class averages over a whole split when given a data set.
  '/introspect.v1.AnalysisService/ConfidenceMatrix',
  // Client stream that buffers up to --max-upload-bytes.
  '/introspect.v1.ModelService/UploadModel',
]);

export class HeavyStreamLimiter {
  private running = 0;
  /** Calls refused since start. */
  refused = 0;

  constructor(
    readonly max: number,
    /** Told of each refusal (method path), e.g. to log it. */
    private readonly onRefused?: (method: string) => void,
  ) {
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`max heavy streams must be a positive integer, got ${max}`);
  }

  /** Heavy streams holding a slot now. */
  get active(): number {
    return this.running;
  }

  /** Takes a slot; returns its release (idempotent), or undefined when none is free. */
  acquire(): (() => void) | undefined {
    if (this.running >= this.max) {
      this.refused++;
      return undefined;
    }
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
    };
  }

  interceptor(): ServerInterceptor {
    return (method, call) => {
      if (!HEAVY_METHODS.has(method.path)) return new ServerInterceptingCall(call);
      let release: (() => void) | undefined;
      const listener = new ServerListenerBuilder()
        .withOnReceiveMetadata((metadata, next) => {
          release = this.acquire();
          if (release) return next(metadata);
          const name = method.path.slice(method.path.lastIndexOf('/') + 1);
          this.onRefused?.(method.path);
          call.sendStatus({
            code: status.RESOURCE_EXHAUSTED,
            details: `${name}: ${this.max} heavy streams are already running (the limit set by --max-heavy-streams); retry later`,
          });
        })
        .withOnCancel(() => release?.())
        .build();
      const responder = new ResponderBuilder()
        .withStart((next) => next(listener))
        .withSendStatus((st, next) => {
          release?.();
          next(st);
        })
        .build();
      return new ServerInterceptingCall(call, responder);
    };
  }
}

/** `introspect_heavy_streams_active` / `_limit` gauges and `introspect_heavy_streams_refused_total`. */
export function registerLimiterMetrics(registry: Registry, limiter: HeavyStreamLimiter): void {
  new Gauge({
    name: 'introspect_heavy_streams_active',
    help: 'Heavy streams (Evaluate and the analysis sweeps) running now.',
    registers: [registry],
    collect() {
      this.set(limiter.active);
    },
  });
  new Gauge({
    name: 'introspect_heavy_streams_limit',
    help: 'The bound on concurrent heavy streams (--max-heavy-streams).',
    registers: [registry],
    collect() {
      this.set(limiter.max);
    },
  });
  let seen = 0;
  new Counter({
    name: 'introspect_heavy_streams_refused_total',
    help: 'Heavy streams answered RESOURCE_EXHAUSTED because the bound was reached.',
    registers: [registry],
    collect() {
      // Counted at scrape time from the limiter, so the limiter needs no metrics of its own.
      if (limiter.refused > seen) this.inc(limiter.refused - seen);
      seen = limiter.refused;
    },
  });
}
