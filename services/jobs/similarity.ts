/**
 * The Similarity job (served from the similarity cache on a repeat, marked `cached`), the values a
 * pruning ranks by, and the SanityCheck job. All start from the class-average images of the job's
 * data set (./averages.ts).
 */
import { approximateBytes } from '../analysis/cache';
import type { MetricName } from '../analysis/metrics';
import { inputSize, type AttributionSettings } from '../analysis/neuron-images';
import { methodKey } from '../methods/registry';
import { sanityCheck, type SanityDepth } from '../analysis/sanity';
import {
  collectSimilarity,
  similarity,
  type ClassImage,
  type LayerSimilarity,
  type SimilarityEvent,
  type SimilarityMethodNumber,
} from '../analysis/similarity';
import type { Dataset } from '../data/dataset';
import { collectAverages, type AverageSettings } from './averages';
import { countLookup, resultKey } from './cache';
import type { JobContext, ModelContext } from './context';

/** A similarity request, checked and resolved (defaults filled in). */
export interface SimilarityJob {
  mc: ModelContext;
  dataset: Dataset;
  average: AverageSettings;
  method: SimilarityMethodNumber;
  metric: MetricName;
  layers: number[];
  classes: number[];
  attribution: AttributionSettings;
  /** Lowest / highest neurons per (class, layer) kept with their images. */
  rankImages: number;
}

/** The class-average images of a job's classes (from the averages cache when there). */
async function jobAverages(ctx: JobContext, job: SimilarityJob, signal: AbortSignal): Promise<ClassImage[]> {
  const averages = await collectAverages(ctx, { mc: job.mc, dataset: job.dataset, settings: job.average, classes: job.classes, score: false }, signal);
  return averages.map((a) => ({ classIndex: a.classIndex, image: a.image }));
}

/** What determines a job's result (the cache key's parameters). */
function jobParams(job: SimilarityJob): Record<string, unknown> {
  return {
    analysis: 'similarity',
    engine: job.mc.kind,
    average: job.average,
    method: job.method,
    metric: job.metric,
    layers: job.layers,
    classes: job.classes,
    attribution: methodKey(job.attribution, inputSize(job.mc.model.engineModel)),
    rankImages: job.rankImages,
  };
}

function options(job: SimilarityJob, averages: ClassImage[], signal: AbortSignal) {
  return {
    engine: job.mc.engine,
    model: job.mc.model.engineModel,
    averages,
    method: job.method,
    metric: job.metric,
    layers: job.layers,
    classes: job.classes,
    attribution: job.attribution,
    rankImages: job.rankImages,
    signal,
  };
}

export interface SimilarityItem {
  event: SimilarityEvent;
  /** Replayed from the cache (the images were computed by an earlier request). */
  cached: boolean;
}

/** The job's events: from the cache after a complete earlier run with the same parameters, else computed. */
export async function* runSimilarity(ctx: JobContext, job: SimilarityJob, signal: AbortSignal): AsyncGenerator<SimilarityItem> {
  const { caches } = ctx;
  const key = resultKey(job.mc.model, job.dataset, jobParams(job));
  const hit = caches.similarity.get(key);
  countLookup(ctx.observe, 'similarity', hit !== undefined);
  if (hit) {
    for (const event of hit) yield { event, cached: true };
    return;
  }
  const averages = await jobAverages(ctx, job, signal);
  let kept: SimilarityEvent[] | undefined = [];
  let keptBytes = 0;
  let counted = 0;
  for await (const event of similarity(options(job, averages, signal))) {
    ctx.observe.imagesComputed('neuron_image', event.done - counted);
    counted = event.done;
    // Collect for the cache only while the stream fits it: a larger one is streamed and not stored.
    if (kept) {
      keptBytes += approximateBytes(event);
      if (keptBytes <= caches.similarityMaxBytes) kept.push(event);
      else kept = undefined;
    }
    yield { event, cached: false };
  }
  // Only a stream that ran to its end is stored.
  if (kept) caches.similarity.set(key, kept);
}

/** Every (class, layer)'s values, collected (no images kept). */
export async function similarityValues(ctx: JobContext, job: SimilarityJob, signal: AbortSignal): Promise<LayerSimilarity[]> {
  const averages = await jobAverages(ctx, job, signal);
  const { layers } = await collectSimilarity({ ...options(job, averages, signal), rankImages: undefined });
  return layers;
}

export interface SanityJob {
  similarity: SimilarityJob;
  /** Seed of the re-initialisation (a safe integer). */
  seed: number;
  /** 0: every depth. */
  maxDepth: number;
}

/** The curves on cascading re-initialised copies of the model beside the trained ones, depth by depth. */
export async function* runSanityCheck(ctx: JobContext, job: SanityJob, signal: AbortSignal): AsyncGenerator<SanityDepth> {
  const s = job.similarity;
  const averages = await jobAverages(ctx, s, signal);
  const model = s.mc.model.engineModel;
  for await (const d of sanityCheck({ ...options(s, averages, signal), rankImages: undefined, seed: job.seed, maxDepth: job.maxDepth })) {
    const images = d.recomputed.reduce((n, l) => n + model.convLayers[l]!.channels, 0) * s.classes.length;
    ctx.observe.imagesComputed('neuron_image', images);
    yield d;
  }
}
