/**
 * The tfjs engine: executes the IR directly with tfjs ops on the best backend present (backend.ts), with a
 * hand-written batched backward for attributions (backward.ts). Weights are converted to tensors once per
 * model and kept until `release`. tfjs runs on the calling thread: work is split into chunks that fit the
 * memory budget, and the event loop gets a turn (and the signal a check) between chunks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { failedPrecondition, invalidArgument, throwIfAborted } from '../../errors';
import { activationValue } from '../../graph/layers';
import { attributionRowBytes, forwardRowBytes, planChunks, type Chunk } from '../chunks';
import type {
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
import { activate, selectBackend, type TfjsBackendChoice, type TfjsBackendName } from './backend';
import { disposeBackward, prepareBackward, runBackward, type ConvBackwardMode } from './backward';
import { runForward } from './forward';
import { fromNchw, isMap, layoutShape, toNchw } from './layout';
import { PreparedModel } from './prepared';

export interface TfjsOptions {
  /** Force a backend instead of the best one present. */
  backend?: TfjsBackendName;
  /** Upper bound on the tensors of one chunk (default 512 MiB). */
  memoryBudgetBytes?: number;
  /**
   * Most rows (images, neurons) per chunk (default 32): tfjs runs on the calling thread, so chunks bound how long
   * the event loop waits.
   */
  maxChunkRows?: number;
  /** Conv backward: conv2d with flipped kernels or conv2dTranspose (default: transpose on 'tensorflow', else flipped). */
  convBackward?: ConvBackwardMode;
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
  private closed = false;

  constructor(private readonly opts: TfjsOptions = {}) {
    this.memoryBudgetBytes = opts.memoryBudgetBytes ?? 512 * MiB;
    if (!(this.memoryBudgetBytes > 0)) throw invalidArgument(`memoryBudgetBytes must be positive, got ${this.memoryBudgetBytes}`);
    if (opts.maxChunkRows !== undefined && !(Number.isInteger(opts.maxChunkRows) && opts.maxChunkRows >= 1)) {
      throw invalidArgument(`maxChunkRows must be a positive integer, got ${opts.maxChunkRows}`);
    }
    if (opts.backend && !['tensorflow', 'wasm', 'cpu'].includes(opts.backend)) {
      throw invalidArgument(`unknown tfjs backend ${String(opts.backend)}`);
    }
    this.log = opts.log ?? ((m) => console.warn(m));
  }

  /** Loads the backend (once); resolves with the status. */
  async ready(): Promise<EngineStatus> {
    this.init ??= selectBackend(this.opts.backend, this.log).then((c) => (this.choice = c));
    await this.init;
    return this.status();
  }

  status(): EngineStatus {
    const c = this.choice;
    if (!c) return { kind: this.kind, device: 'cpu', backend: this.opts.backend ?? 'pending', note: 'backend not loaded yet' };
    return { kind: this.kind, device: c.device, backend: c.backend, note: c.note };
  }

  /** The conv backward this engine uses on its backend. */
  get convBackward(): ConvBackwardMode {
    return this.opts.convBackward ?? (this.choice?.backend === 'tensorflow' ? 'transpose' : 'flipped');
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
    opts?: RunOptions,
  ): Promise<Float32Array> {
    checkInput(model, input, 1);
    checkAttributionOptions(opts);
    checkRule(rule);
    const rows = checkTarget(model, target);
    return this.using(model, async (pm) => {
      const g = model.graph;
      const targetValue = target.kind === 'conv' ? model.convLayers[target.layer]!.output : g.output;
      const picks = target.kind === 'conv' ? target.channels : target.classes;
      const per = sampleSize(model);
      const out = new Float32Array(rows * per);
      const x = fromNchw(input, 1, g.input.shape);
      const pass = (() => {
        try {
          return prepareBackward(pm, x, targetValue, rule, this.convBackward);
        } finally {
          x.dispose();
        }
      })();
      try {
        await this.eachChunk(rows, attributionRowBytes(g, targetValue), opts?.signal, async (c) => {
          const seed = tf.tidy(() => {
            const ids = tf.tensor1d(picks.slice(c.start, c.end), 'int32');
            // oneHot as int32, then cast: tfjs-backend-wasm 4.22 writes integer bits into a float32 oneHot.
            if (target.kind === 'conv') {
              const z = pass.target; // [1, H, W, C]
              const base = target.objective === 'abs_sum' ? tf.sign(z) : tf.cast(tf.greater(z, 0), 'float32');
              const channels = z.shape[3]!;
              const onehot = tf.reshape(tf.cast(tf.oneHot(ids, channels), 'float32'), [c.end - c.start, 1, 1, channels]);
              return tf.mul(base, onehot);
            }
            const onehot = tf.cast(tf.oneHot(ids, model.classes), 'float32');
            return tf.reshape(onehot, layoutShape(c.end - c.start, pm.shape(g.output)));
          });
          const gi = disposingAfter(seed, () => runBackward(pm, pass, seed));
          const nchw = disposingAfter(gi, () => toNchw(gi, g.input.shape));
          out.set(await readAndDispose(nchw), c.start * per);
        });
      } finally {
        disposeBackward(pass);
      }
      return out;
    });
  }

  async release(modelId: string): Promise<void> {
    const entry = this.models.get(modelId);
    this.models.delete(modelId);
    if (entry) this.retire(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
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
