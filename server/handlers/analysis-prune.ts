/**
 * Prune and LayerProbes: decode, run the job (services/jobs/prune.ts), encode. Prune's `similarity`
 * settings default their model, dataset and engine to the prune request's.
 */
import {
  SimilarityRequest,
  type LayerProbeResponse,
  type LayerProbesRequest,
  type PruneRequest,
  type PruneResponse,
} from '../../api/generated/introspect/v1/analysis';
import type { PruneCriterionName } from '../../services/analysis/pruning-criteria';
import { invalidArgument } from '../../services/errors';
import { DEFAULT_RANDOM_SEEDS } from '../../services/jobs/defaults';
import { runProbes, runPrune, type ProbesJob, type PruneJob } from '../../services/jobs/prune';
import { splitFromWire } from '../convert';
import type { RpcContext } from '../rpc';
import type { AnalysisDeps } from './analysis';
import { CRITERIA_TO_WIRE, criteriaFromWire, fractionsFromWire } from './analysis-prune-request';
import { layerIndicesFromWire } from './analysis-selections';
import { similarityJobFromWire } from './analysis-similarity';
import { datasetNamed, modelContext } from './common';

const MAX_SEEDS = 100;
const MAX_PROBE_EPOCHS = 10_000;

async function pruneJobFromWire(deps: AnalysisDeps, req: PruneRequest): Promise<PruneJob> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const split = splitFromWire(req.split);
  if (!dataset.summary.splits.some((s) => s.split === split)) throw invalidArgument(`split: dataset '${dataset.summary.name}' has no ${split} split`);
  const layers = layerIndicesFromWire(req.layers, mc.model.engineModel, 'layers');
  const fractions = fractionsFromWire(req.fractions);
  const criteria: PruneCriterionName[] = criteriaFromWire(req.criteria);
  const randomSeeds = req.randomSeeds || DEFAULT_RANDOM_SEEDS;
  if (randomSeeds > MAX_SEEDS) throw invalidArgument(`random_seeds = ${randomSeeds} is too large (at most ${MAX_SEEDS})`);
  const job: PruneJob = { mc, dataset, split, layers, fractions, criteria, randomSeeds, limit: req.limit, apozImages: req.apozImages };
  if (criteria.includes('similarity_top') || criteria.includes('similarity_bottom')) {
    const settings = SimilarityRequest.fromPartial({
      ...req.similarity,
      model: req.similarity?.model || req.model,
      dataset: req.similarity?.dataset || req.dataset,
      engine: req.similarity?.engine || req.engine,
      layers,
      rankImages: 0,
    });
    const similarity = await similarityJobFromWire(deps, settings, 'similarity');
    if (req.classIndex !== undefined && !similarity.classes.includes(req.classIndex)) {
      throw invalidArgument(`class_index = ${req.classIndex} is not among the similarity classes (${similarity.classes.join(', ')})`);
    }
    job.similarity = { job: similarity, classIndex: req.classIndex };
  }
  return job;
}

export async function* pruneStream(deps: AnalysisDeps, req: PruneRequest, ctx: RpcContext): AsyncGenerator<PruneResponse> {
  let baseline = 0;
  for await (const e of runPrune(deps.jobs, await pruneJobFromWire(deps, req), ctx.signal)) {
    const progress = { done: e.done, total: e.total };
    if (e.kind === 'baseline') baseline = e.baseline.accuracy;
    if (e.kind !== 'result') {
      yield { progress, baselineAccuracy: baseline };
      continue;
    }
    const r = e.result;
    const result = { layer: r.layer, criterion: CRITERIA_TO_WIRE[r.criterion], fraction: r.fraction, pruned: r.pruned };
    yield { progress, baselineAccuracy: baseline, result: { ...result, accuracy: r.accuracy, accuracyStd: r.accuracyStd, perClassAccuracy: r.perClass, seeds: r.seeds } };
  }
}

async function probesJobFromWire(deps: AnalysisDeps, req: LayerProbesRequest): Promise<ProbesJob> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const layers = layerIndicesFromWire(req.layers, mc.model.engineModel, 'layers');
  if (req.epochs > MAX_PROBE_EPOCHS) throw invalidArgument(`epochs = ${req.epochs} is too large (at most ${MAX_PROBE_EPOCHS})`);
  if (!(Number.isFinite(req.l2) && req.l2 >= 0)) throw invalidArgument(`l2 = ${req.l2} must be a finite number ≥ 0`);
  for (const s of ['train', 'test'] as const) {
    if (!dataset.summary.splits.some((x) => x.split === s)) throw invalidArgument(`dataset: '${dataset.summary.name}' has no ${s} split (probes fit on train, test on test)`);
  }
  return { mc, dataset, layers, trainLimit: req.trainLimit, testLimit: req.testLimit, epochs: req.epochs || undefined, l2: req.l2 || undefined };
}

export async function* layerProbesStream(deps: AnalysisDeps, req: LayerProbesRequest, ctx: RpcContext): AsyncGenerator<LayerProbeResponse> {
  for await (const e of runProbes(deps.jobs, await probesJobFromWire(deps, req), ctx.signal)) {
    const progress = { done: e.done, total: e.total };
    if (e.kind === 'features') {
      yield { progress, modelAccuracy: 0 };
      continue;
    }
    const r = e.result;
    const result = { layer: r.layer, features: r.features, trainAccuracy: r.trainAccuracy, testAccuracy: r.testAccuracy, perClassAccuracy: r.perClass };
    yield { progress, modelAccuracy: e.modelAccuracy, result };
  }
}
