/**
 * Validation by pruning (SPEC §4): in one conv layer at a time, zero the channels a criterion picks
 * (similarity top / bottom, random over several seeds, filter L1, APoZ) for each fraction, with no
 * fine-tuning, and measure accuracy overall and per class. The unpruned baseline comes first.
 *
 * Nothing is rebuilt per configuration: channels are zeroed through the engine's run-time mask (one
 * graph per layer, cached by the engine). What does not change is computed once: the evaluation images
 * (read and preprocessed once, held in memory within a budget), the part of the network before the
 * pruned layer (run once per batch for all of that layer's configurations where the graph splits there,
 * ./pruning-split.ts), the L1 norms, the APoZ statistics of every layer (one pass over `apozImages`
 * train images for all layers together), and the similarity values (given by the caller, computed once
 * by the similarity service). Results of a layer come out together once its configurations are done.
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
import { splitAtConv } from './pruning-split';
import { meanStd, type LayerSimilarity } from './similarity';

export const DEFAULT_FRACTIONS = [0.4];
export const DEFAULT_RANDOM_SEEDS = 3;
export const DEFAULT_APOZ_IMAGES = 1000;

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

interface Config {
  criterion: PruneCriterionName;
  fraction: number;
  /** One channel list per run (one per seed for random). */
  runs: number[][];
}

/**
 * Every configuration of one layer over the evaluation images, batch by batch: the part of the model
 * before the layer runs once per batch (when the graph splits there), then each run's masked rest.
 */
async function* evaluateLayer(
  engine: Engine,
  model: EngineModel,
  layer: number,
  configs: Config[],
  set: EvalSet,
  signal?: AbortSignal,
): AsyncGenerator<number, Accuracy[][]> {
  const split = splitAtConv(model, layer);
  const tallies = configs.map((c) => c.runs.map(() => new AccuracyTally(set.classes)));
  try {
    for await (const b of set.batches(signal)) {
      throwIfAborted(signal);
      const input = split ? await engine.forward(split.prefix, b.input, b.n, { signal }) : b.input;
      const target = split ? split.suffix : model;
      const key = split ? split.suffixLayer : layer;
      let runs = 0;
      for (const [i, c] of configs.entries()) {
        for (const [r, pruned] of c.runs.entries()) {
          const logits = await engine.forward(target, input, b.n, { mask: new Map([[key, Uint32Array.from(pruned)]]), signal });
          tallies[i][r].add(logits, b.labels, b.n);
          runs++;
        }
      }
      yield runs * b.n;
    }
  } finally {
    if (split) await Promise.all([engine.release(split.prefix.id), engine.release(split.suffix.id)]);
  }
  return tallies.map((t) => t.map((x) => x.result()));
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
    const running = evaluateLayer(engine, model, layer, configs, set, signal);
    let step: IteratorResult<number, Accuracy[][]>;
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
      await running.return([]);
    }
    const accuracies = step.value;
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
