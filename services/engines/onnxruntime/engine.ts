/**
 * The onnxruntime engine: runs graphs exported from the IR (forward with optional activation statistics and
 * channel masks; batched attribution) on a pool of worker threads. Large batches are split into chunks that
 * fit the memory budget and spread over the workers; results come back in request order.
 */
import * as os from 'node:os';
import { IntrospectError, invalidArgument } from '../../errors';
import { attributionRowBytes, forwardRowBytes, planChunks, type Chunk } from '../chunks';
import type {
  AttributeOptions,
  AttributionTarget,
  Engine,
  EngineModel,
  EngineStatus,
  LayerActivations,
  ReluRule,
  RunOptions,
} from '../engine';
import {
  checkAttributionOptions,
  checkInput,
  checkLayers,
  checkMask,
  checkRule,
  checkTarget,
  maskVector,
  sampleSize,
} from '../requests';
import { GraphCache, buildGraph, graphKey, type GraphSpec } from './graph-cache';
import { attributionGraph } from '../attribution-graph';
import { defaultPasses, passSet, type PassSet } from '../../graph/passes';
import { ORT_DEVICES, deviceLabel, isGpu, isOrtDevice } from './devices';
import { WorkerPool, type PoolCounters } from './pool';
import { checkWebgpuAttribution } from './webgpu-limits';
import type { OrtDevice, TensorMessage } from './protocol';

export interface OnnxRuntimeOptions {
  /** Worker threads (default: one per core up to 4 on CPU; 1 with CUDA). */
  workers?: number;
  /** Threads per onnxruntime session (default: cores / workers). */
  intraOpThreads?: number;
  device?: OrtDevice;
  /** Upper bound on the tensors of the chunks in flight at once (default 1 GiB). */
  memoryBudgetBytes?: number;
  /** Graph bytes of the sessions each worker keeps, least recently used evicted first (default 1 GiB). */
  sessionBytesPerWorker?: number;
  /**
   * Most rows (images or neurons) in one run (default 64): smaller batches keep a backward's working set in
   * cache (VGG11 GBP, all channels: 64 rows a run beat whole layers by ~25% on one core).
   */
  maxChunkRows?: number;
  /** Device passes of the graphs (services/graph/passes; default: the device's set, all of them on CPU). */
  passes?: string[];
  log?: (message: string) => void;
  /** Told how long each run waited for a free worker, in seconds (for metrics). */
  onQueueWait?: (seconds: number) => void;
}

const GiB = 1024 ** 3;

export class OnnxRuntimeEngine implements Engine {
  readonly kind = 'onnxruntime' as const;
  readonly workers: number;
  readonly intraOpThreads: number;
  readonly memoryBudgetBytes: number;
  readonly maxChunkRows: number;
  private readonly pool: WorkerPool;
  private readonly graphs: GraphCache;
  /** The device passes its graphs use. */
  readonly passes: PassSet;

  constructor(opts: OnnxRuntimeOptions = {}) {
    const cores = Math.max(1, os.availableParallelism());
    const device = opts.device ?? 'cpu';
    if (!isOrtDevice(device)) throw invalidArgument(`unknown onnxruntime device ${String(device)} (${ORT_DEVICES.join(' | ')})`);
    // CPU: one single-threaded worker per core scaled best here (2 cores, all 2,752 VGG11 GBP channels, with
    // the graphs of the time: 2×1 6.4 s, 1×2 8.6 s, 1×1 9.6 s; with today's graphs 2×1 4.4 s, 1×1 7.9 s;
    // see the README's benchmarks); more than 4 copies of every session costs memory, so larger machines
    // get 4 workers with several threads each. A GPU (CUDA, WebGPU): one worker feeds it.
    const defaultWorkers = isGpu(device) ? 1 : Math.min(cores, 4);
    this.workers = positiveInt(opts.workers ?? defaultWorkers, 'workers');
    this.intraOpThreads = positiveInt(opts.intraOpThreads ?? Math.max(1, Math.floor(cores / this.workers)), 'intraOpThreads');
    this.memoryBudgetBytes = opts.memoryBudgetBytes ?? GiB;
    this.maxChunkRows = positiveInt(opts.maxChunkRows ?? 64, 'maxChunkRows');
    if (!(this.memoryBudgetBytes > 0)) throw invalidArgument(`memoryBudgetBytes must be positive, got ${this.memoryBudgetBytes}`);
    this.passes = opts.passes ? passSet(opts.passes) : defaultPasses('onnxruntime', device);
    this.graphs = new GraphCache(Math.max(64 * 1024 ** 2, this.memoryBudgetBytes / 4));
    this.pool = new WorkerPool({
      workers: this.workers,
      intraOpThreads: this.intraOpThreads,
      device,
      sessionBytesPerWorker: opts.sessionBytesPerWorker ?? GiB,
      log: opts.log ?? ((m) => console.warn(m)),
      onQueueWait: opts.onQueueWait,
    });
  }

  /** Resolves once every worker has started and chosen its execution provider. */
  async ready(): Promise<EngineStatus> {
    await this.pool.ready();
    return this.status();
  }

  /** Jobs dispatched and completed, graphs sent to workers (since start). */
  poolCounters(): PoolCounters {
    return { ...this.pool.counters };
  }

  status(): EngineStatus {
    const s = this.pool.status();
    return { kind: this.kind, device: deviceLabel(s.provider), backend: s.provider, note: s.note };
  }

  async forward(model: EngineModel, input: Float32Array, n: number, opts?: RunOptions): Promise<Float32Array> {
    checkInput(model, input, n);
    const masks = checkMask(model, opts?.mask);
    const spec: GraphSpec = { kind: 'forward', maskLayers: masks.map((m) => m.layer.index), activationStats: [], passes: this.passes };
    const out = new Float32Array(n * model.classes);
    await this.runRows(model, spec, n, forwardRowBytes(model.graph), opts?.signal, (c) => ({
      feeds: { input: this.rows(model, input, c), ...this.maskFeeds(masks) },
      fetches: ['logits'],
      place: (o) => out.set(expectSize(o.logits!, (c.end - c.start) * model.classes, 'logits'), c.start * model.classes),
    }));
    return out;
  }

  async activations(
    model: EngineModel,
    input: Float32Array,
    n: number,
    layers: number[],
    opts?: RunOptions,
  ): Promise<LayerActivations[]> {
    checkInput(model, input, n);
    const requested = checkLayers(model, layers);
    const masks = checkMask(model, opts?.mask);
    const unique = [...new Set(layers)].sort((a, b) => a - b);
    const spec: GraphSpec = { kind: 'forward', maskLayers: masks.map((m) => m.layer.index), activationStats: unique, passes: this.passes };
    const results = new Map<number, LayerActivations>();
    for (const l of requested) {
      results.set(l.index, { layer: l.index, channels: l.channels, mean: new Float32Array(n * l.channels), zeroFraction: new Float32Array(n * l.channels) });
    }
    const fetches = unique.flatMap((j) => [`act_mean_${j}`, `act_zero_${j}`]);
    await this.runRows(model, spec, n, forwardRowBytes(model.graph), opts?.signal, (c) => ({
      feeds: { input: this.rows(model, input, c), ...this.maskFeeds(masks) },
      fetches,
      place: (o) => {
        for (const j of unique) {
          const r = results.get(j)!;
          const size = (c.end - c.start) * r.channels;
          r.mean.set(expectSize(o[`act_mean_${j}`]!, size, `act_mean_${j}`), c.start * r.channels);
          r.zeroFraction.set(expectSize(o[`act_zero_${j}`]!, size, `act_zero_${j}`), c.start * r.channels);
        }
      },
    }));
    return layers.map((j) => results.get(j)!);
  }

  async attribute(
    model: EngineModel,
    input: Float32Array,
    target: AttributionTarget,
    rule: ReluRule,
    opts?: AttributeOptions,
  ): Promise<Float32Array> {
    checkInput(model, input, 1);
    checkAttributionOptions(opts);
    checkRule(rule);
    const rows = checkTarget(model, target);
    const g = model.graph;
    if (this.pool.status().provider === 'webgpu') checkWebgpuAttribution(model);
    const choice = attributionGraph(model, target, rule, this.passes, opts?.wrt);
    const { width, targetValue } = choice;
    const spec: GraphSpec = { kind: 'attribution', target: choice.spec, rule, passes: this.passes, wrt: opts?.wrt, key: choice.key };
    const picks = target.kind === 'conv' ? target.channels : target.classes;
    const per = choice.rowSize;
    const out = new Float32Array(rows * per);
    await this.runRows(model, spec, rows, attributionRowBytes(g, targetValue), opts?.signal, (c) => {
      const b = c.end - c.start;
      const select = new Float32Array(b * width);
      for (let i = 0; i < b; i++) select[i * width + picks[c.start + i]!] = 1;
      return {
        feeds: {
          input: { data: input.slice(), dims: [1, ...g.input.shape] },
          select: { data: select, dims: [b, width] },
        },
        fetches: ['attribution'],
        place: (o) => out.set(expectSize(o.attribution!, b * per, 'attribution'), c.start * per),
      };
    });
    return out;
  }

  async release(modelId: string): Promise<void> {
    const mine = (k: string): boolean => k.startsWith(`${modelId}|`);
    this.graphs.drop(mine);
    this.pool.release(mine);
  }

  async close(): Promise<void> {
    this.graphs.drop(() => true);
    await this.pool.close();
  }

  // -------------------------------------------------------------------------------------------------------

  /** Splits `total` rows into chunks, runs them on the pool in parallel and lets each place its result. */
  private async runRows(
    model: EngineModel,
    spec: GraphSpec,
    total: number,
    rowBytes: number,
    signal: AbortSignal | undefined,
    job: (c: Chunk) => { feeds: Record<string, TensorMessage>; fetches: string[]; place: (out: Record<string, Float32Array>) => void },
  ): Promise<void> {
    const key = graphKey(model.id, spec);
    const build = (): Uint8Array => this.graphs.get(key, () => buildGraph(model.graph, spec));
    const chunks = planChunks(total, rowBytes, this.memoryBudgetBytes, this.workers, this.maxChunkRows);
    // Feeds are small (a chunk's images, or the image and a chunk's select rows): build them all up front.
    const built = chunks.map((c) => job(c));
    await this.pool.runAll(
      built.map((j) => ({ key, model: build, feeds: j.feeds, fetches: j.fetches })),
      signal,
      (i, outputs) => {
        const data: Record<string, Float32Array> = {};
        for (const [name, t] of Object.entries(outputs)) data[name] = t.data;
        built[i]!.place(data);
      },
    );
  }

  private rows(model: EngineModel, input: Float32Array, c: Chunk): TensorMessage {
    const per = sampleSize(model);
    return { data: input.slice(c.start * per, c.end * per), dims: [c.end - c.start, ...model.graph.input.shape] };
  }

  private maskFeeds(masks: ReturnType<typeof checkMask>): Record<string, TensorMessage> {
    const feeds: Record<string, TensorMessage> = {};
    for (const m of masks) {
      feeds[`mask_${m.layer.index}`] = { data: maskVector(m.layer.channels, m.channels), dims: [m.layer.channels] };
    }
    return feeds;
  }
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw invalidArgument(`${what} must be a positive integer, got ${v}`);
  return v;
}

function expectSize(data: Float32Array, size: number, what: string): Float32Array {
  if (data.length !== size) throw new IntrospectError('internal', `onnxruntime returned ${data.length} values for ${what}, expected ${size}`);
  return data;
}
