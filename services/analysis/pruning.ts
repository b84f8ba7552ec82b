/**
 * Validation by pruning (SPEC §4): in one conv layer at a time, zero the channels a criterion picks
 * (similarity top / bottom, random over several seeds, filter L1, APoZ) for each fraction, with no
 * fine-tuning, and measure accuracy overall and per class. The unpruned baseline comes first.
 *
 * What does not change is computed once: the evaluation images (read and preprocessed once, held in
 * memory within a budget), the network up to and including the pruned layer's activation and pooling
 * (run once per batch for all of that layer's configurations where the graph splits there,
 * ./pruning-split.ts, and started from an earlier layer's split value where that fits a second
 * budget), the L1 norms, the APoZ statistics of every layer (one pass over `apozImages` train images
 * for all layers together), and the similarity values (given by the caller, computed once
 * by the similarity service). Each configuration then runs only the rest of the network, without the
 * pruned channels: the next conv reads fewer input channels (../graph/keep-channels.ts). Channels that
 * are silent (0 after the ReLU) on every evaluation image are found in one pass and dropped too; a
 * configuration that zeroes only silent channels is the baseline, exactly, and is not run; configurations
 * that zero the same live channels run once. Where the graph does not split after the layer (a residual
 * connection), the engine's run-time mask zeroes the channels. Results of a layer come out together once
 * its configurations are done.
 */
import type { Engine, EngineModel } from '../engines/engine';
import type { Dataset, SplitName } from '../data/dataset';
import { decodeSize, toInputSpace, type Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { invalidArgument, throwIfAborted } from '../errors';
import { AccuracyTally, openEvalSet, type Accuracy, type EvalSet } from './pruning-eval';
import {
  apozScores,
  filterL1Norms,
  PRUNE_CRITERIA,
  prunedCount,
  randomOrder,
  rankChannels,
  type PruneCriterionName,
} from './pruning-criteria';
import { layerRunners, planJobs, type Config } from './pruning-jobs';
import { silentChannels } from './pruning-silent';
import { segmentBetween } from './pruning-split';
import { meanStd } from '../../api/curves';
import type { LayerSimilarity } from './similarity';

export const DEFAULT_FRACTIONS = [0.4];
export const DEFAULT_RANDOM_SEEDS = 3;
export const DEFAULT_APOZ_IMAGES = 1000;
/** A layer's split value is held for all evaluation images, for the next layers' prefixes, up to this many bytes by default. */
export const DEFAULT_HELD_ACTIVATION_BYTES = 512 * 1024 * 1024;

export interface PruneOptions {
  engine: Engine;
  model: EngineModel;
  dataset: Dataset;
  /** The evaluation split. */
  split: SplitName;
  preprocessing: PreprocessSpec;
  inputShape: Shape3;
  /** Conv layers; default all. */
  layers?: number[];
  /** Each in (0, 1); default [0.4]. */
  fractions?: number[];
  /** Default all five. */
  criteria?: PruneCriterionName[];
  /** Per conv layer, one similarity value per channel (see `similarityRanking`); needed by the similarity criteria. */
  similarityValues?: Map<number, ArrayLike<number>>;
  /** Seeds 0..randomSeeds−1 for the random criterion; default 3. */
  randomSeeds?: number;
  /** Evaluate the first `limit` images (0 or absent = all). */
  limit?: number;
  /** Train images for APoZ (the evaluation split where the data set has no train split); default 1000. */
  apozImages?: number;
  /** Preprocessed evaluation images held in memory up to this many bytes (default 256 MiB). */
  heldBytes?: number;
  /** A layer's split value for all evaluation images held for the next layers up to this many bytes (default 512 MiB; 0: never). */
  heldActivationBytes?: number;
  /** Images per engine call; default 1024. */
  batchSize?: number;
  signal?: AbortSignal;
}

export interface PruneResult {
  layer: number;
  criterion: PruneCriterionName;
  fraction: number;
  /** Channels zeroed, in ranking order (the first seed's for random). */
  pruned: number[];
  /** Mean over seeds for random. */
  accuracy: number;
  /** Population std over seeds for random (0 otherwise). */
  accuracyStd: number;
  /** Mean over seeds for random. */
  perClass: number[];
  seeds: number;
}

/** `done`/`total` count images through the model (each evaluation of each configuration, one per random seed, counts its images). */
export type PruneEvent =
  | { kind: 'baseline'; baseline: Accuracy; done: number; total: number }
  | { kind: 'progress'; done: number; total: number }
  | { kind: 'result'; result: PruneResult; done: number; total: number };

/** Ranking values per layer from the similarity service: the mean over classes, or one class's values. */
export function similarityRanking(layers: LayerSimilarity[], classIndex?: number): Map<number, Float64Array> {
  const sums = new Map<number, { sum: Float64Array; n: number }>();
  for (const l of layers) {
    if (classIndex !== undefined && l.classIndex !== classIndex) continue;
    let s = sums.get(l.layer);
    if (!s) sums.set(l.layer, (s = { sum: new Float64Array(l.values.length), n: 0 }));
    for (let k = 0; k < l.values.length; k++) s.sum[k] += l.values[k];
    s.n++;
  }
  if (classIndex !== undefined && sums.size === 0) throw invalidArgument(`class_index ${classIndex}: no similarity values for this class`);
  return new Map([...sums].map(([layer, s]) => [layer, s.sum.map((v) => v / s.n)]));
}

interface Resolved {
  layers: number[];
  fractions: number[];
  criteria: PruneCriterionName[];
  seeds: number;
  apozImages: number;
}

function resolve(opts: PruneOptions): Resolved {
  const { model } = opts;
  const layers = opts.layers && opts.layers.length > 0 ? [...opts.layers] : model.convLayers.map((l) => l.index);
  for (const l of layers) {
    if (!Number.isInteger(l) || model.convLayers[l] === undefined) {
      throw invalidArgument(`layers: conv layer ${l} does not exist (the model has ${model.convLayers.length} conv layers)`);
    }
  }
  const fractions = opts.fractions && opts.fractions.length > 0 ? [...opts.fractions] : DEFAULT_FRACTIONS;
  for (const f of fractions) if (!(f > 0 && f < 1)) throw invalidArgument(`fractions: ${f} is outside (0, 1)`);
  const criteria = opts.criteria && opts.criteria.length > 0 ? [...new Set(opts.criteria)] : [...PRUNE_CRITERIA];
  for (const c of criteria) if (!PRUNE_CRITERIA.includes(c)) throw invalidArgument(`criteria: unknown criterion '${String(c)}'`);
  const seeds = opts.randomSeeds ?? DEFAULT_RANDOM_SEEDS;
  if (criteria.includes('random') && (!Number.isInteger(seeds) || seeds < 1)) throw invalidArgument(`random_seeds must be a positive integer, got ${seeds}`);
  const apozImages = opts.apozImages && opts.apozImages > 0 ? opts.apozImages : DEFAULT_APOZ_IMAGES;
  if (criteria.some((c) => c === 'similarity_top' || c === 'similarity_bottom')) {
    for (const l of layers) {
      const v = opts.similarityValues?.get(l);
      if (!v) throw invalidArgument(`similarity: no similarity values for conv layer ${l}`);
      if (v.length !== model.convLayers[l].channels) {
        throw invalidArgument(`similarity: conv layer ${l} has ${model.convLayers[l].channels} channels but ${v.length} values were given`);
      }
    }
  }
  return { layers, fractions, criteria, seeds, apozImages };
}

/** Per layer, the APoZ score of every channel, from one pass over the first `count` images of a split. */
export async function apozByLayer(
  opts: Pick<PruneOptions, 'engine' | 'model' | 'dataset' | 'preprocessing' | 'inputShape' | 'signal'> & { split: SplitName; layers: number[]; count: number; batchSize?: number },
): Promise<Map<number, Float64Array>> {
  const { engine, model, dataset, signal } = opts;
  const size = decodeSize(dataset.summary, opts.preprocessing, opts.inputShape);
  const sums = new Map(opts.layers.map((l) => [l, new Float64Array(model.convLayers[l].channels)]));
  let n = 0;
  for await (const b of dataset.batches(opts.split, { batchSize: opts.batchSize ?? 256, limit: opts.count, size, signal })) {
    throwIfAborted(signal);
    const acts = await engine.activations(model, toInputSpace(b, opts.preprocessing, opts.inputShape), b.n, opts.layers, { signal });
    for (const a of acts) {
      const s = apozScores(a.zeroFraction, b.n, a.channels);
      const sum = sums.get(a.layer)!;
      for (let k = 0; k < a.channels; k++) sum[k] += s[k] * b.n;
    }
    n += b.n;
  }
  if (n === 0) throw invalidArgument(`apoz_images: the ${opts.split} split of '${dataset.summary.name}' gave no images`);
  return new Map([...sums].map(([l, s]) => [l, s.map((v) => v / n)]));
}

/** Accuracy of the unpruned model over every evaluation image; `onBatch` hears each batch's size. */
async function evaluateBaseline(engine: Engine, model: EngineModel, set: EvalSet, onBatch: (n: number) => void, signal?: AbortSignal): Promise<Accuracy> {
  const tally = new AccuracyTally(set.classes);
  for await (const b of set.batches(signal)) {
    throwIfAborted(signal);
    tally.add(await engine.forward(model, b.input, b.n, { signal }), b.labels, b.n);
    onBatch(b.n);
  }
  return tally.result();
}

/**
 * Split values of earlier layers kept for every evaluation batch (within a byte budget), so that a later
 * layer's prefix starts from them instead of from the input.
 */
interface Held {
  value: string;
  rows: Float32Array[];
}

/**
 * Every configuration of one layer over the evaluation images, batch by batch: the part of the model
 * before the pruned channels runs once per batch (from `held` where it can), then each distinct job's
 * rest. Yields the images accounted for (every run of every configuration, computed or not); returns the
 * accuracies and, where `holdBytes` allows, this layer's split value for every batch.
 */
async function* evaluateLayer(
  engine: Engine,
  model: EngineModel,
  layer: number,
  configs: Config[],
  set: EvalSet,
  baseline: Accuracy,
  silent: Set<number>,
  held: Held | undefined,
  holdBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<number, { accuracies: Accuracy[][]; held?: Held }> {
  const jobs = planJobs(configs, silent);
  const { prefix, after, runners } = layerRunners(engine, model, layer, jobs, silent);
  const fromHeld = after && held ? segmentBetween(model, held.value, after.value) : undefined;
  const hold = after && set.count * after.shape.reduce((a, b) => a * b, 1) * 4 <= holdBytes ? { value: after.value, rows: [] as Float32Array[] } : undefined;
  const tallies = jobs.map(() => new AccuracyTally(set.classes));
  const runCount = configs.reduce((n, c) => n + c.runs.length, 0);
  try {
    let batch = 0;
    for await (const b of set.batches(signal)) {
      throwIfAborted(signal);
      let shared: Float32Array | undefined;
      if (prefix && (jobs.length > 0 || hold)) {
        shared = fromHeld ? await engine.forward(fromHeld, held!.rows[batch], b.n, { signal }) : await engine.forward(prefix, b.input, b.n, { signal });
      }
      if (hold && shared) hold.rows.push(shared);
      for (const [i, runner] of runners.entries()) tallies[i].add(await runner.run(b, shared, signal), b.labels, b.n);
      batch++;
      yield runCount * b.n;
    }
  } finally {
    const models = [...(prefix ? [prefix.id] : []), ...(fromHeld ? [fromHeld.id] : [])];
    await Promise.all([...runners.map((r) => r.release()), ...models.map((id) => engine.release(id))]);
  }
  // Runs that no job stands for zero only silent channels: the baseline's accuracy, exactly.
  const accuracies: Accuracy[][] = configs.map((c) => c.runs.map(() => baseline));
  jobs.forEach((job, j) => {
    const acc = tallies[j].result();
    for (const [i, r] of job.runs) accuracies[i][r] = acc;
  });
  return { accuracies, held: hold };
}

export async function* prune(opts: PruneOptions): AsyncGenerator<PruneEvent> {
  const { engine, model, signal } = opts;
  const r = resolve(opts);
  const set = await openEvalSet({ ...opts, heldBytes: opts.heldBytes });
  const runsPerConfig = r.criteria.reduce((n, c) => n + (c === 'random' ? r.seeds : 1), 0);
  const total = (1 + r.layers.length * r.fractions.length * runsPerConfig) * set.count;
  let done = 0;

  const baseline = await evaluateBaseline(engine, model, set, (n) => (done += n), signal);
  yield { kind: 'baseline', baseline, done, total };

  const silent = await silentChannels(engine, model, set, r.layers, signal);
  const holdBytes = opts.heldActivationBytes ?? DEFAULT_HELD_ACTIVATION_BYTES;
  let held: Held | undefined;

  let apoz: Map<number, Float64Array> | undefined;
  if (r.criteria.includes('apoz')) {
    const hasTrain = opts.dataset.summary.splits.some((s) => s.split === 'train');
    apoz = await apozByLayer({ ...opts, split: hasTrain ? 'train' : opts.split, layers: r.layers, count: r.apozImages });
  }

  for (const layer of r.layers) {
    const channels = model.convLayers[layer].channels;
    const configs: Config[] = [];
    for (const criterion of r.criteria) {
      let orders: number[][];
      if (criterion === 'similarity_top') orders = [rankChannels(opts.similarityValues!.get(layer)!, true)];
      else if (criterion === 'similarity_bottom') orders = [rankChannels(opts.similarityValues!.get(layer)!, false)];
      else if (criterion === 'l1') orders = [rankChannels(filterL1Norms(model, layer), false)];
      else if (criterion === 'apoz') orders = [rankChannels(apoz!.get(layer)!, true)];
      else orders = Array.from({ length: r.seeds }, (_, s) => randomOrder(channels, s, layer));
      for (const fraction of r.fractions) {
        const count = prunedCount(fraction, channels);
        configs.push({ criterion, fraction, runs: orders.map((o) => o.slice(0, count)) });
      }
    }
    const running = evaluateLayer(engine, model, layer, configs, set, baseline, silent.get(layer) ?? new Set(), held, holdBytes, signal);
    let step: IteratorResult<number, { accuracies: Accuracy[][]; held?: Held }>;
    try {
      step = await running.next();
      while (!step.done) {
        done += step.value;
        yield { kind: 'progress', done, total };
        step = await running.next();
      }
    } finally {
      // A consumer that stops at a yield (client cancel, deadline) must still let evaluateLayer
      // release the split prefix/suffix models it holds.
      await running.return({ accuracies: [] });
    }
    const { accuracies } = step.value;
    held = step.value.held ?? held;
    for (const [i, c] of configs.entries()) {
      const runs = accuracies[i];
      const { mean, std } = meanStd(runs.map((a) => a.accuracy));
      const perClass = runs[0].perClass.map((_, k) => runs.reduce((s, a) => s + a.perClass[k], 0) / runs.length);
      yield {
        kind: 'result',
        result: { layer, criterion: c.criterion, fraction: c.fraction, pruned: c.runs[0], accuracy: mean, accuracyStd: std, perClass, seeds: runs.length },
        done,
        total,
      };
    }
  }
}
