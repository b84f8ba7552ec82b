/**
 * The Prune job (SPEC §4): when a similarity criterion is asked for, the similarity values are
 * computed once (averages → similarity → ranking) from the job's similarity settings; then the
 * baseline and one result per (layer, criterion, fraction). And the LayerProbes job.
 */
import { layerProbes, type ProbesEvent } from '../analysis/probes';
import { prune, similarityRanking, type PruneEvent } from '../analysis/pruning';
import type { PruneCriterionName } from '../analysis/pruning-criteria';
import type { Dataset, SplitName } from '../data/dataset';
import type { JobContext, ModelContext } from './context';
import { similarityValues, type SimilarityJob } from './similarity';

export interface PruneJob {
  mc: ModelContext;
  dataset: Dataset;
  /** The evaluation split. */
  split: SplitName;
  layers: number[];
  /** undefined: the service's default. */
  fractions?: number[];
  criteria: PruneCriterionName[];
  randomSeeds: number;
  /** 0: all images. */
  limit: number;
  /** 0: the service's default. */
  apozImages: number;
  /** Needed by the similarity criteria: what the ranking is computed from, and whose class (default the mean over classes). */
  similarity?: { job: SimilarityJob; classIndex?: number };
}

/** The whole job: the ranking (when a similarity criterion needs it), then the evaluations. */
export async function* runPrune(ctx: JobContext, job: PruneJob, signal: AbortSignal): AsyncGenerator<PruneEvent> {
  const ranking = await pruneRanking(ctx, job.similarity, signal);
  yield* pruneEvaluations(job, ranking, signal);
}

/** Step 1: per layer, the value each channel is ranked by (averages → similarity → ranking). */
export async function pruneRanking(ctx: JobContext, s: PruneJob['similarity'], signal: AbortSignal): Promise<Map<number, Float64Array> | undefined> {
  if (!s) return undefined;
  const values = await similarityValues(ctx, s.job, signal);
  return similarityRanking(values, s.classIndex);
}

/** Step 2: the baseline and one result per (layer, criterion, fraction). */
export function pruneEvaluations(job: PruneJob, ranking: Map<number, Float64Array> | undefined, signal: AbortSignal): AsyncGenerator<PruneEvent> {
  return prune({
    engine: job.mc.engine,
    model: job.mc.model.engineModel,
    dataset: job.dataset,
    split: job.split,
    preprocessing: job.mc.model.preprocessing,
    inputShape: job.mc.model.inputShape,
    layers: job.layers,
    fractions: job.fractions,
    criteria: job.criteria,
    similarityValues: ranking,
    randomSeeds: job.randomSeeds,
    limit: job.limit,
    apozImages: job.apozImages,
    signal,
  });
}

export interface ProbesJob {
  mc: ModelContext;
  dataset: Dataset;
  layers: number[];
  /** 0: all images of the split. */
  trainLimit: number;
  testLimit: number;
  /** undefined: the service's defaults. */
  epochs?: number;
  l2?: number;
}

export function runProbes(_ctx: JobContext, job: ProbesJob, signal: AbortSignal): AsyncGenerator<ProbesEvent> {
  return layerProbes({
    engine: job.mc.engine,
    model: job.mc.model.engineModel,
    dataset: job.dataset,
    preprocessing: job.mc.model.preprocessing,
    inputShape: job.mc.model.inputShape,
    layers: job.layers,
    trainLimit: job.trainLimit,
    testLimit: job.testLimit,
    epochs: job.epochs,
    l2: job.l2,
    signal,
  });
}
