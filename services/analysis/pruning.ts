/**
 * Validation by pruning (SPEC §4): in one conv layer at a time, zero the channels a criterion picks
 * (similarity top / bottom, random over several seeds, filter L1, APoZ) for each fraction, with no
 * fine-tuning, and measure accuracy overall and per class. The unpruned baseline comes first.
 *
 * Nothing is rebuilt per configuration: channels are zeroed through the engine's run-time mask (one
 * graph per layer, cached by the engine). What does not change is computed once: the evaluation images
 * (read and preprocessed once, held in memory within a budget), the L1 norms, the APoZ statistics of
 * every layer (one pass over `apozImages` train images for all layers together), and the similarity
 * values (given by the caller, computed once by the similarity service).
 */
import type { ChannelMask, Engine, EngineModel } from '../engines/engine';
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

/** `done`/`total` count evaluations (each a pass over the evaluation images; one per random seed). */
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

/** Accuracy of the model with `mask` applied, over every evaluation image. */
async function evaluateMasked(engine: Engine, model: EngineModel, set: EvalSet, mask: ChannelMask | undefined, signal?: AbortSignal): Promise<Accuracy> {
  const tally = new AccuracyTally(set.classes);
  for await (const b of set.batches(signal)) {
    throwIfAborted(signal);
    tally.add(await engine.forward(model, b.input, b.n, { mask, signal }), b.labels, b.n);
  }
  return tally.result();
}

export async function* prune(opts: PruneOptions): AsyncGenerator<PruneEvent> {
  const { engine, model, signal } = opts;
  const r = resolve(opts);
  const set = await openEvalSet({ ...opts, heldBytes: opts.heldBytes });
  const runsPerConfig = r.criteria.reduce((n, c) => n + (c === 'random' ? r.seeds : 1), 0);
  const total = 1 + r.layers.length * r.fractions.length * runsPerConfig;
  let done = 0;

  const baseline = await evaluateMasked(engine, model, set, undefined, signal);
  done++;
  yield { kind: 'baseline', baseline, done, total };

  let apoz: Map<number, Float64Array> | undefined;
  if (r.criteria.includes('apoz')) {
    const hasTrain = opts.dataset.summary.splits.some((s) => s.split === 'train');
    apoz = await apozByLayer({ ...opts, split: hasTrain ? 'train' : opts.split, layers: r.layers, count: r.apozImages });
  }

  for (const layer of r.layers) {
    const channels = model.convLayers[layer].channels;
    const orders = new Map<PruneCriterionName, number[][]>();
    for (const c of r.criteria) {
      if (c === 'similarity_top') orders.set(c, [rankChannels(opts.similarityValues!.get(layer)!, true)]);
      else if (c === 'similarity_bottom') orders.set(c, [rankChannels(opts.similarityValues!.get(layer)!, false)]);
      else if (c === 'l1') orders.set(c, [rankChannels(filterL1Norms(model, layer), false)]);
      else if (c === 'apoz') orders.set(c, [rankChannels(apoz!.get(layer)!, true)]);
      else orders.set(c, Array.from({ length: r.seeds }, (_, s) => randomOrder(channels, s, layer)));
    }
    for (const criterion of r.criteria) {
      for (const fraction of r.fractions) {
        const count = prunedCount(fraction, channels);
        const runs: Accuracy[] = [];
        const chosen = orders.get(criterion)!.map((o) => o.slice(0, count));
        for (const pruned of chosen) {
          throwIfAborted(signal);
          runs.push(await evaluateMasked(engine, model, set, new Map([[layer, Uint32Array.from(pruned)]]), signal));
          done++;
          if (runs.length < chosen.length) yield { kind: 'progress', done, total };
        }
        const { mean, std } = meanStd(runs.map((a) => a.accuracy));
        const perClass = runs[0].perClass.map((_, i) => runs.reduce((s, a) => s + a.perClass[i], 0) / runs.length);
        yield {
          kind: 'result',
          result: { layer, criterion, fraction, pruned: chosen[0], accuracy: mean, accuracyStd: std, perClass, seeds: runs.length },
          done,
          total,
        };
      }
    }
  }
}
