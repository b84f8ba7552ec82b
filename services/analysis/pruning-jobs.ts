/**
 * The work behind one layer of a pruning sweep: the distinct evaluations its configurations need
 * (planJobs) and how each runs on a batch (layerRunners): the rest of the network after the layer
 * without the pruned channels where the graph splits after it, the engine's channel mask elsewhere.
 */
import { createHash } from 'node:crypto';
import type { Engine, EngineModel } from '../engines/engine';
import type { PruneCriterionName } from './pruning-criteria';
import { splitAfterConv, splitAtConv, suffixKeeping, type SplitAfter } from './pruning-split';

export interface Config {
  criterion: PruneCriterionName;
  fraction: number;
  /** One channel list per run (one per seed for random). */
  runs: number[][];
}

/** One evaluation actually run: the live channels it zeroes, and the runs it stands for. */
export interface Job {
  zeroed: number[];
  runs: Array<[config: number, run: number]>;
}

/**
 * The distinct evaluations behind a layer's runs: channels silent on the evaluation images are left out
 * of each run's pruned set (zeroing them changes nothing), runs left with the same set share one
 * evaluation, and runs left with none equal the baseline.
 */
export function planJobs(configs: Config[], silent: Set<number>): Job[] {
  const byKey = new Map<string, Job>();
  configs.forEach((c, i) =>
    c.runs.forEach((pruned, r) => {
      const zeroed = pruned.filter((ch) => !silent.has(ch)).sort((a, b) => a - b);
      if (zeroed.length === 0) return;
      const key = zeroed.join(',');
      const job = byKey.get(key);
      if (job) job.runs.push([i, r]);
      else byKey.set(key, { zeroed, runs: [[i, r]] });
    }),
  );
  return [...byKey.values()];
}

/** A short content tag for a channel list (engine graph ids). */
function channelTag(layer: number, channels: readonly number[]): string {
  return `${layer}-${createHash('sha1').update(channels.join(',')).digest('hex').slice(0, 12)}`;
}

/** Rows [n, C·HW] → [n, K·HW] with channels `keep`. */
function gatherChannels(x: Float32Array, n: number, channels: number, hw: number, keep: readonly number[]): Float32Array {
  const out = new Float32Array(n * keep.length * hw);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < keep.length; j++) {
      const from = (i * channels + keep[j]) * hw;
      out.set(x.subarray(from, from + hw), (i * keep.length + j) * hw);
    }
  }
  return out;
}

/** A copy of rows [n, C·HW] with channels `zeroed` set to 0. */
function zeroChannels(x: Float32Array, n: number, channels: number, hw: number, zeroed: readonly number[]): Float32Array {
  const out = x.slice();
  for (let i = 0; i < n; i++) for (const c of zeroed) out.fill(0, (i * channels + c) * hw, (i * channels + c + 1) * hw);
  return out;
}

/** How one job runs on a batch: the model to call and the input it reads. */
export interface Runner {
  run(b: { input: Float32Array; n: number }, shared: Float32Array | undefined, signal?: AbortSignal): Promise<Float32Array>;
  release(): Promise<void>;
}

/**
 * Runners for a layer's jobs. Where the model splits after the layer (./pruning-split.ts), the prefix
 * runs once per batch and each job runs the suffix without its zeroed channels and without the silent
 * ones (fewer input channels for the next conv), or with them zeroed where the suffix cannot drop them.
 * Elsewhere the model splits before the layer, or not at all, and the engine's mask zeroes them.
 */
export function layerRunners(
  engine: Engine,
  model: EngineModel,
  layer: number,
  jobs: Job[],
  silent: Set<number>,
): { prefix?: EngineModel; after?: SplitAfter; runners: Runner[] } {
  const after = splitAfterConv(model, layer);
  if (after) {
    const [channels, h, w] = after.shape;
    const runners = jobs.map((job): Runner => {
      const drop = new Set([...job.zeroed, ...silent]);
      const keep = Array.from({ length: channels }, (_, c) => c).filter((c) => !drop.has(c));
      const reduced = keep.length > 0 ? suffixKeeping(after, keep, channelTag(layer, keep)) : undefined;
      if (reduced) {
        return {
          run: (b, v, signal) => engine.forward(reduced, gatherChannels(v!, b.n, channels, h * w, keep), b.n, { signal }),
          release: () => engine.release(reduced.id),
        };
      }
      return {
        run: (b, v, signal) => engine.forward(after.suffix, zeroChannels(v!, b.n, channels, h * w, job.zeroed), b.n, { signal }),
        release: () => engine.release(after.suffix.id),
      };
    });
    return { prefix: after.prefix, after, runners };
  }
  const before = splitAtConv(model, layer);
  const target = before ? before.suffix : model;
  const key = before ? before.suffixLayer : layer;
  const runners = jobs.map((job): Runner => ({
    run: (b, x, signal) => engine.forward(target, x ?? b.input, b.n, { mask: new Map([[key, Uint32Array.from(job.zeroed)]]), signal }),
    release: async () => {
      if (before) await engine.release(before.suffix.id);
    },
  }));
  return { prefix: before?.prefix, runners };
}
