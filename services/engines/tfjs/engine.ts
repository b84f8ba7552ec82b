/**
 * The tfjs engine: executes the IR directly with tfjs ops on the best backend present (backend.ts) for forward
 * runs, and runs attributions by interpreting the same attribution graph the onnxruntime engine runs
 * (services/graph/backward.ts, ./interpret.ts), one program per model / target / rule, cached. Weights are
 * converted to tensors once per model and kept until `release`. tfjs runs on the calling thread: work is split into chunks that fit the
 * memory budget, and the event loop gets a turn (and the signal a check) between chunks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { failedPrecondition, invalidArgument, throwIfAborted } from '../../errors';
import { activationValue } from '../../graph/layers';
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
import { activate, selectBackend, TFJS_BACKENDS, type TfjsBackendChoice, type TfjsBackendName } from './backend';
import { buildAttribution } from '../../graph/backward';
import { attributionGraph } from '../attribution-graph';
import { runForward } from './forward';
import { fromNchw, isMap, toNchw } from './layout';
import { PreparedModel } from './prepared';
import { ProgramCache } from './program-cache';
import { defaultPasses, passSet, type PassSet } from '../../graph/passes';

export interface TfjsOptions {
  /** Force a backend instead of the best one present. */
  backend?: TfjsBackendName;
  /**
   * The requested device: 'webgpu' tries the WebGPU backend first and falls back to the best other one (the
   * status says so); any other device leaves the choice to the automatic order.
   */
  device?: string;
  /** Upper bound on the tensors of one chunk (default 512 MiB). */
  memoryBudgetBytes?: number;
  /**
   * Most rows (images, neurons) per chunk (default 32): tfjs runs on the calling thread, so chunks bound how long
   * the event loop waits.
   */
  maxChunkRows?: number;
  /** Bytes of built attribution programs (their weights) kept for reuse (default 512 MiB). */
  programCacheBytes?: number;
  /** Device passes of the attribution graphs (services/graph/passes; default: the backend's device's set). */
  passes?: string[];
  log?: (message: string) => void;
}

const MiB = 1024 ** 2;

interface ModelEntry {
  pm: PreparedModel;
  /** Calls running with these tensors. */
  users: number;
  /** Released: dispose when the last user is done. */
  retired: boolean;
}

export class TfjsEngine implements Engine {
  readonly kind = 'tfjs' as const;
  readonly memoryBudgetBytes: number;
  private readonly log: (m: string) => void;
  private choice: TfjsBackendChoice | undefined;
  private init: Promise<TfjsBackendChoice> | undefined;
  private readonly models = new Map<string, ModelEntry>();
  private readonly programs: ProgramCache;
  private readonly forcedPasses: PassSet | undefined;
  private closed = false;

  constructor(private readonly opts: TfjsOptions = {}) {
    this.memoryBudgetBytes = opts.memoryBudgetBytes ?? 512 * MiB;
    if (!(this.memoryBudgetBytes > 0)) throw invalidArgument(`memoryBudgetBytes must be positive, got ${this.memoryBudgetBytes}`);
    if (opts.maxChunkRows !== undefined && !(Number.isInteger(opts.maxChunkRows) && opts.maxChunkRows >= 1)) {
      throw invalidArgument(`maxChunkRows must be a positive integer, got ${opts.maxChunkRows}`);
    }
    if (opts.backend && !(TFJS_BACKENDS as readonly string[]).includes(opts.backend)) {
      throw invalidArgument(`unknown tfjs backend ${String(opts.backend)}`);
    }
    if (opts.programCacheBytes !== undefined && !(opts.programCacheBytes >= 0)) {
      throw invalidArgument(`programCacheBytes must not be negative, got ${opts.programCacheBytes}`);
    }
    this.forcedPasses = opts.passes ? passSet(opts.passes) : undefined;
    this.programs = new ProgramCache(opts.programCacheBytes ?? 512 * MiB);
    this.log = opts.log ?? ((m) => console.warn(m));
  }

  /** Loads the backend (once); resolves with the status. */
  async ready(): Promise<EngineStatus> {
    this.init ??= selectBackend({ backend: this.opts.backend, device: this.opts.device }, this.log).then((c) => (this.choice = c));
    await this.init;
    return this.status();
  }

  status(): EngineStatus {
    const c = this.choice;
    if (!c) return { kind: this.kind, device: 'cpu', backend: this.opts.backend ?? 'pending', note: 'backend not loaded yet' };
    return { kind: this.kind, device: c.device, backend: c.backend, note: c.note };
  }

  /** The device passes its attribution graphs use (known once the backend is loaded). */
  get passes(): PassSet {
    return this.forcedPasses ?? defaultPasses('tfjs', this.choice?.device ?? 'cpu');
  }

  async forward(model: EngineModel, input: Float32Array, n: number, opts?: RunOptions): Promise<Float32Array> {
    checkInput(model, input, n);
    const masks = checkMask(model, opts?.mask);
    return this.using(model, async (pm) => {
      const g = model.graph;
      const out = new Float32Array(n * model.classes);
      const maskTensors = new Map(masks.map((m) => [m.layer.output, tf.tensor1d(maskVector(m.layer.channels, m.channels))]));
      try {
        await this.eachChunk(n, forwardRowBytes(g), opts?.signal, async (c) => {
          const x = fromNchw(this.rows(model, input, c), c.end - c.start, g.input.shape);
          const values = disposingAfter(x, () => runForward(pm, x, { keep: new Set([g.output]), masks: maskTensors }));
          // An output that is a feature map (a split model's prefix) is held channels-last; callers read NCHW.
          const y = values.get(g.output)!;
          const outShape = g.shapes.get(g.output) ?? [];
          out.set(await readAndDispose(isMap(outShape) ? disposingAfter(y, () => toNchw(y, outShape)) : y), c.start * model.classes);
        });
      } finally {
        maskTensors.forEach((t) => t.dispose());
      }
      return out;
    });
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
    return this.using(model, async (pm) => {
      const g = model.graph;
      const actValues = requested.map((l) => activationValue(g, l));
      const results = requested.map((l) => ({
        layer: l.index,
        channels: l.channels,
        mean: new Float32Array(n * l.channels),
        zeroFraction: new Float32Array(n * l.channels),
      }));
      const maskTensors = new Map(masks.map((m) => [m.layer.output, tf.tensor1d(maskVector(m.layer.channels, m.channels))]));
      try {
        await this.eachChunk(n, forwardRowBytes(g), opts?.signal, async (c) => {
          const x = fromNchw(this.rows(model, input, c), c.end - c.start, g.input.shape);
          const values = disposingAfter(x, () => runForward(pm, x, { keep: new Set(actValues), masks: maskTensors }));
          try {
            for (let i = 0; i < requested.length; i++) {
              const a = values.get(actValues[i]!)!;
              const [mean, zero] = tf.tidy(() => [tf.mean(a, [1, 2]), tf.mean(tf.cast(tf.lessEqual(a, 0), 'float32'), [1, 2])]) as [
                tf.Tensor,
                tf.Tensor,
              ];
              const r = results[i]!;
              try {
                r.mean.set(await mean.data<'float32'>(), c.start * r.channels);
                r.zeroFraction.set(await zero.data<'float32'>(), c.start * r.channels);
              } finally {
                mean.dispose();
                zero.dispose();
              }
            }
          } finally {
            values.forEach((t) => t.dispose());
          }
        });
      } finally {
        maskTensors.forEach((t) => t.dispose());
      }
      return results;
    });
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
    return this.using(model, async () => {
      const g = model.graph;
      const passes = this.passes;
      const { spec, key, width, targetValue, rowSize: per } = attributionGraph(model, target, rule, passes, opts?.wrt);
      const picks = target.kind === 'conv' ? target.channels : target.classes;
      const out = new Float32Array(rows * per);
      const lease = this.programs.acquire(key, () => buildAttribution(g, spec, rule, { passes, wrt: opts?.wrt }));
      const x = tf.tensor(input, [1, ...g.input.shape], 'float32');
      try {
        await this.eachChunk(rows, attributionRowBytes(g, targetValue), opts?.signal, async (c) => {
          const sel = new Float32Array((c.end - c.start) * width);
          for (let i = c.start; i < c.end; i++) sel[(i - c.start) * width + picks[i]!] = 1;
          const select = tf.tensor2d(sel, [c.end - c.start, width]);
          const outs = disposingAfter(select, () => lease.program.run({ input: x, select }));
          out.set(await readAndDispose(outs.get('attribution')!), c.start * per);
        });
      } finally {
        x.dispose();
        lease.release();
      }
      return out;
    });
  }

  async release(modelId: string): Promise<void> {
    const entry = this.models.get(modelId);
    this.models.delete(modelId);
    this.programs.drop((k) => k.startsWith(`${modelId}|`));
    if (entry) this.retire(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.programs.clear();
    for (const entry of this.models.values()) this.retire(entry);
    this.models.clear();
  }

  // -------------------------------------------------------------------------------------------------------

  /**
   * Runs `fn` with the model's converted weights. A model released meanwhile keeps its tensors until every call
   * using them has finished.
   */
  private async using<T>(model: EngineModel, fn: (pm: PreparedModel) => Promise<T>): Promise<T> {
    if (this.closed) throw failedPrecondition('the tfjs engine is closed');
    await this.ready();
    await activate(this.choice!.backend);
    let entry = this.models.get(model.id);
    if (!entry || entry.pm.graph !== model.graph) {
      if (entry) this.retire(entry);
      entry = { pm: new PreparedModel(model), users: 0, retired: false };
      this.models.set(model.id, entry);
    }
    entry.users++;
    try {
      return await fn(entry.pm);
    } finally {
      entry.users--;
      if (entry.retired && entry.users === 0) entry.pm.dispose();
    }
  }

  private retire(entry: ModelEntry): void {
    entry.retired = true;
    if (entry.users === 0) entry.pm.dispose();
  }

  /** Runs `fn` per chunk, in order, yielding to the event loop and checking the signal between chunks. */
  private async eachChunk(total: number, rowBytes: number, signal: AbortSignal | undefined, fn: (c: Chunk) => Promise<void>): Promise<void> {
    const maxRows = this.opts.maxChunkRows ?? 32;
    for (const c of planChunks(total, rowBytes, Math.min(this.memoryBudgetBytes, maxRows * rowBytes), 1)) {
      throwIfAborted(signal);
      await activate(this.choice!.backend);
      await fn(c);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    throwIfAborted(signal);
  }

  private rows(model: EngineModel, input: Float32Array, c: Chunk): Float32Array {
    const per = sampleSize(model);
    return input.subarray(c.start * per, c.end * per);
  }
}

/** `f()`, with `t` disposed afterwards whether or not `f` throws. */
function disposingAfter<T>(t: tf.Tensor, f: () => T): T {
  try {
    return f();
  } finally {
    t.dispose();
  }
}

/** The tensor's values, with the tensor disposed whether or not reading them fails. */
async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  try {
    return (await t.data<'float32'>()) as Float32Array;
  } finally {
    t.dispose();
  }
}
