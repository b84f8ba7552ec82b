/**
 * Prune and LayerProbes (SPEC §4). Prune computes the similarity values once (when a similarity
 * criterion is asked for) from the request's `similarity` settings, whose model, dataset and engine
 * default to the prune request's, then streams the baseline and one result per (layer, criterion,
 * fraction). LayerProbes streams one result per layer after the two feature passes.
 */
import {
  PruneCriterion,
  SimilarityRequest,
  type LayerProbeResponse,
  type LayerProbesRequest,
  type PruneRequest,
  type PruneResponse,
} from '../../clients/generated/introspect/v1/analysis';
import { layerProbes } from '../../services/analysis/probes';
import { prune, similarityRanking } from '../../services/analysis/pruning';
import type { PruneCriterionName } from '../../services/analysis/pruning-criteria';
import { collectSimilarity } from '../../services/analysis/similarity';
import { invalidArgument } from '../../services/errors';
import { splitFromWire } from '../convert';
import type { RpcContext } from '../rpc';
import { collectAverages, type AnalysisDeps } from './analysis-averages';
import { layerIndicesFromWire } from './analysis-requests';
import { similarityJob } from './analysis-similarity';
import { datasetNamed, modelContext } from './common';

const CRITERIA: Record<number, PruneCriterionName> = {
  [PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP]: 'similarity_top',
  [PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM]: 'similarity_bottom',
  [PruneCriterion.PRUNE_CRITERION_RANDOM]: 'random',
  [PruneCriterion.PRUNE_CRITERION_L1]: 'l1',
  [PruneCriterion.PRUNE_CRITERION_APOZ]: 'apoz',
};
const CRITERIA_TO_WIRE = Object.fromEntries(Object.entries(CRITERIA).map(([k, v]) => [v, Number(k) as PruneCriterion])) as Record<
  PruneCriterionName,
  PruneCriterion
>;

const MAX_SEEDS = 100;
const MAX_FRACTIONS = 100;
const MAX_PROBE_EPOCHS = 10_000;

function criteriaFromWire(criteria: PruneCriterion[]): PruneCriterionName[] {
  if (criteria.length === 0) return Object.values(CRITERIA);
  const seen = new Set<PruneCriterionName>();
  return criteria.map((c, i) => {
    const name = CRITERIA[c];
    if (name === undefined) throw invalidArgument(`criteria[${i}]: unknown prune criterion ${String(c)}`);
    if (seen.has(name)) throw invalidArgument(`criteria[${i}] = ${name} is repeated`);
    seen.add(name);
    return name;
  });
}

function fractionsFromWire(fractions: number[]): number[] | undefined {
  if (fractions.length > MAX_FRACTIONS) throw invalidArgument(`fractions: at most ${MAX_FRACTIONS} values, got ${fractions.length}`);
  fractions.forEach((f, i) => {
    if (!(f > 0 && f < 1)) throw invalidArgument(`fractions[${i}] = ${f} must be in (0, 1)`);
  });
  return fractions.length > 0 ? fractions : undefined;
}

export async function* pruneStream(deps: AnalysisDeps, req: PruneRequest, ctx: RpcContext): AsyncGenerator<PruneResponse> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const split = splitFromWire(req.split);
  if (!dataset.summary.splits.some((s) => s.split === split)) throw invalidArgument(`split: dataset '${dataset.summary.name}' has no ${split} split`);
  const model = mc.model.engineModel;
  const layers = layerIndicesFromWire(req.layers, model, 'layers');
  const fractions = fractionsFromWire(req.fractions);
  const criteria = criteriaFromWire(req.criteria);
  const seeds = req.randomSeeds || 3;
  if (seeds > MAX_SEEDS) throw invalidArgument(`random_seeds = ${seeds} is too large (at most ${MAX_SEEDS})`);

  let similarityValues: Map<number, Float64Array> | undefined;
  if (criteria.includes('similarity_top') || criteria.includes('similarity_bottom')) {
    const settings = SimilarityRequest.fromPartial({
      ...req.similarity,
      model: req.similarity?.model || req.model,
      dataset: req.similarity?.dataset || req.dataset,
      engine: req.similarity?.engine || req.engine,
      layers,
      rankImages: 0,
    });
    const job = await similarityJob(deps, settings, 'similarity');
    if (req.classIndex !== undefined && !job.classes.includes(req.classIndex)) {
      throw invalidArgument(`class_index = ${req.classIndex} is not among the similarity classes (${job.classes.join(', ')})`);
    }
    const averages = await collectAverages(deps, { mc: job.mc, dataset: job.dataset, settings: job.average, classes: job.classes, score: false, signal: ctx.signal });
    const { layers: values } = await collectSimilarity({
      engine: job.mc.engine,
      model: job.mc.model.engineModel,
      averages: averages.map((a) => ({ classIndex: a.classIndex, image: a.image })),
      method: job.method,
      metric: job.metric,
      layers,
      classes: job.classes,
      attribution: job.attribution,
      signal: ctx.signal,
    });
    similarityValues = similarityRanking(values, req.classIndex);
  }

  let baseline = 0;
  for await (const e of prune({
    engine: mc.engine,
    model,
    dataset,
    split,
    preprocessing: mc.model.preprocessing,
    inputShape: mc.model.inputShape,
    layers,
    fractions,
    criteria,
    similarityValues,
    randomSeeds: seeds,
    limit: req.limit,
    apozImages: req.apozImages,
    signal: ctx.signal,
  })) {
    const progress = { done: e.done, total: e.total };
    if (e.kind === 'baseline') {
      baseline = e.baseline.accuracy;
      yield { progress, baselineAccuracy: baseline };
    } else if (e.kind === 'progress') {
      yield { progress, baselineAccuracy: baseline };
    } else {
      const r = e.result;
      yield {
        progress,
        baselineAccuracy: baseline,
        result: {
          layer: r.layer,
          criterion: CRITERIA_TO_WIRE[r.criterion],
          fraction: r.fraction,
          pruned: r.pruned,
          accuracy: r.accuracy,
          accuracyStd: r.accuracyStd,
          perClassAccuracy: r.perClass,
          seeds: r.seeds,
        },
      };
    }
  }
}

export async function* layerProbesStream(deps: AnalysisDeps, req: LayerProbesRequest, ctx: RpcContext): AsyncGenerator<LayerProbeResponse> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const model = mc.model.engineModel;
  const layers = layerIndicesFromWire(req.layers, model, 'layers');
  if (req.epochs > MAX_PROBE_EPOCHS) throw invalidArgument(`epochs = ${req.epochs} is too large (at most ${MAX_PROBE_EPOCHS})`);
  if (!(Number.isFinite(req.l2) && req.l2 >= 0)) throw invalidArgument(`l2 = ${req.l2} must be a finite number ≥ 0`);
  for (const s of ['train', 'test'] as const) {
    if (!dataset.summary.splits.some((x) => x.split === s)) throw invalidArgument(`dataset: '${dataset.summary.name}' has no ${s} split (probes fit on train, test on test)`);
  }
  for await (const e of layerProbes({
    engine: mc.engine,
    model,
    dataset,
    preprocessing: mc.model.preprocessing,
    inputShape: mc.model.inputShape,
    layers,
    trainLimit: req.trainLimit,
    testLimit: req.testLimit,
    epochs: req.epochs || undefined,
    l2: req.l2 || undefined,
    signal: ctx.signal,
  })) {
    const progress = { done: e.done, total: e.total };
    if (e.kind === 'features') {
      yield { progress, modelAccuracy: 0 };
      continue;
    }
    const r = e.result;
    yield {
      progress,
      modelAccuracy: e.modelAccuracy,
      result: {
        layer: r.layer,
        features: r.features,
        trainAccuracy: r.trainAccuracy,
        testAccuracy: r.testAccuracy,
        perClassAccuracy: r.perClass,
      },
    };
  }
}
