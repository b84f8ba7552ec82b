/**
 * The class-average images other analyses start from, and the ClassAverages / ConfidenceMatrix jobs:
 * cached averages come at once, the others are computed in one pass of the service (and cached).
 */
import { activationMaxAverages } from '../analysis/activation-max';
import { classAverages } from '../analysis/averages';
import { confidenceMatrix } from '../analysis/confidence';
import type { Dataset, SplitName } from '../data/dataset';
import { IntrospectError } from '../errors';
import { resultKey, countLookup, type CachedAverage } from './cache';
import type { JobContext, ModelContext } from './context';

export type AverageKindName = 'mean' | 'top_k' | 'bottom_k' | 'activation_max';

/** An average spec with its defaults resolved (what determines the images, so also a cache key part). */
export interface AverageSettings {
  kind: AverageKindName;
  split: SplitName;
  /** top_k / bottom_k only (undefined otherwise). */
  k?: number;
  /** undefined = the service's default (on for mean and activation maximisation's start). */
  rescale?: boolean;
  /** activation_max only. */
  steps?: number;
  stepSize?: number;
  stopProbability?: number;
}

export interface AverageJob {
  mc: ModelContext;
  dataset: Dataset;
  settings: AverageSettings;
  /** Class indices (checked), in the order wanted. */
  classes: number[];
  /** Also score the images averaged (fills meanConfidence for the mean). */
  score: boolean;
}

export interface AverageItem extends CachedAverage {
  /** Computed now (false: from the cache). */
  computed: boolean;
  done: number;
  total: number;
}

/** The services' class averages of the classes given, in their order. */
function computeAverages(job: AverageJob, classes: number[], signal: AbortSignal): AsyncGenerator<CachedAverage> {
  const { mc, dataset, settings: s } = job;
  const common = {
    dataset,
    split: s.split,
    preprocessing: mc.model.preprocessing,
    inputShape: mc.model.inputShape,
    forward: mc.forward,
    k: s.k,
    rescale: s.rescale,
    classes,
    scoreImages: job.score,
    signal,
  };
  if (s.kind === 'activation_max') {
    return activationMaxAverages({
      ...common,
      engine: mc.engine,
      model: mc.model.engineModel,
      steps: s.steps,
      stepSize: s.stepSize,
      stopProbability: s.stopProbability,
    });
  }
  return classAverages({ ...common, kind: s.kind });
}

/**
 * Class-average images of `job.classes` in that order: cached ones at once, the others computed in
 * one pass of the service (and cached). An entry computed without scores does not serve a request
 * that wants them.
 */
export async function* classAverageImages(ctx: JobContext, job: AverageJob, signal: AbortSignal): AsyncGenerator<AverageItem> {
  const { caches } = ctx;
  const key = (c: number): string =>
    resultKey(job.mc.model, job.dataset, { average: job.settings, classIndex: c, engine: job.mc.kind });
  const usable = (e: CachedAverage | undefined): e is CachedAverage => e !== undefined && (!job.score || e.imagesScored > 0);
  const found = new Map<number, CachedAverage>();
  for (const c of job.classes) {
    const e = caches.averages.get(key(c));
    if (usable(e)) found.set(c, e);
  }
  const missing = job.classes.filter((c) => !found.has(c));
  countLookup(ctx.observe, 'averages', missing.length === 0);
  const computed = missing.length > 0 ? computeAverages(job, missing, signal) : undefined;
  const total = job.classes.length;
  try {
    for (const [i, c] of job.classes.entries()) {
      let item = found.get(c);
      const fresh = item === undefined;
      if (fresh) {
        const next = await computed!.next();
        if (next.done || next.value.classIndex !== c) {
          throw new IntrospectError('internal', `class averages came out of order: expected class ${c}`);
        }
        item = copyAverage(next.value);
        caches.averages.set(key(c), item);
        ctx.observe.imagesComputed('class_average', 1);
      }
      yield { ...item!, computed: fresh, done: i + 1, total };
    }
  } finally {
    await computed?.return(undefined);
  }
}

function copyAverage(a: CachedAverage): CachedAverage {
  return {
    classIndex: a.classIndex,
    image: a.image,
    imagesUsed: a.imagesUsed,
    meanConfidence: a.meanConfidence,
    imagesScored: a.imagesScored,
    averageConfidence: a.averageConfidence,
    predictedClass: a.predictedClass,
    steps: a.steps,
  };
}

/** All averages of a job, collected. */
export async function collectAverages(ctx: JobContext, job: AverageJob, signal: AbortSignal): Promise<AverageItem[]> {
  const out: AverageItem[] = [];
  for await (const a of classAverageImages(ctx, job, signal)) out.push(a);
  return out;
}

/** The images a confidence matrix scores: explicit ones (taken as classes 0..n-1), or class averages. */
export type ConfidenceJob =
  | { mc: ModelContext; images: Float32Array; n: number }
  | { mc: ModelContext; averages: AverageJob };

export interface ConfidenceResult {
  n: number;
  /** n × classes, row-major. */
  probabilities: Float32Array;
  classes: number;
  /** Row r's probability of its own class (empty when a row's class is not a model class). */
  diagonal: number[];
}

export async function runConfidence(ctx: JobContext, job: ConfidenceJob, signal: AbortSignal): Promise<ConfidenceResult> {
  let images: Float32Array;
  let n: number;
  let rowClasses: number[] | undefined;
  if ('images' in job) {
    images = job.images;
    n = job.n;
  } else {
    const averages = await collectAverages(ctx, job.averages, signal);
    const plane = job.mc.model.inputShape.reduce((a, b) => a * b, 1);
    images = new Float32Array(averages.length * plane);
    averages.forEach((a, r) => images.set(a.image, r * plane));
    n = averages.length;
    rowClasses = averages.map((a) => a.classIndex);
  }
  const { probabilities, classes } = await confidenceMatrix(images, n, job.mc.forward, signal);
  // Row r of dataset averages belongs to class rowClasses[r]; explicit images are taken as classes 0..n-1.
  const rows = rowClasses ?? Array.from({ length: n }, (_, r) => r);
  const diagonal = rows.every((c) => c < classes) ? rows.map((c, r) => probabilities[r * classes + c]!) : [];
  return { n, probabilities, classes, diagonal };
}
