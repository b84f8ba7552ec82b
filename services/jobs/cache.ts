/**
 * The analysis jobs' result caches (services/analysis/cache.ts), one set per server (part of the
 * jobs' context), keyed by the model's sha256, the data set and the resolved request parameters:
 *   averages   — one class-average image per entry (class averages, confidence matrix, neuron-image
 *                inputs and similarity all start from them);
 *   similarity — the full event stream of a Similarity job, replayed with `cached: true`.
 * Lookups are told to the context's observer (the server counts them into
 * introspect_cache_{hits,misses}_total{cache="averages"|"similarity"}).
 */
import type { ClassAverage } from '../analysis/averages';
import { ResultCache, approximateBytes, cacheKey, keyOfDataset } from '../analysis/cache';
import type { SimilarityEvent } from '../analysis/similarity';
import type { Dataset, DatasetSummary } from '../data/dataset';
import type { LoadedModel } from '../models/model';
import type { JobObserver } from './context';

/** A class-average image as computed (input space), with what the model made of it. */
export type CachedAverage = Omit<ClassAverage, 'done' | 'total'> & {
  /** Activation maximisation: gradient steps taken. */
  steps?: number;
};

export interface AnalysisCaches {
  averages: ResultCache<CachedAverage>;
  similarity: ResultCache<SimilarityEvent[]>;
  /** The similarity cache's bound: an event stream larger than this is not collected for it. */
  similarityMaxBytes: number;
}

const MiB = 1024 * 1024;
export const AVERAGES_CACHE_BYTES = 64 * MiB;
export const SIMILARITY_CACHE_BYTES = 256 * MiB;

export function createAnalysisCaches(opts: { averagesBytes?: number; similarityBytes?: number } = {}): AnalysisCaches {
  const similarityMaxBytes = opts.similarityBytes ?? SIMILARITY_CACHE_BYTES;
  return {
    averages: new ResultCache<CachedAverage>({ maxBytes: opts.averagesBytes ?? AVERAGES_CACHE_BYTES, sizeOf: (v) => approximateBytes(v) }),
    similarity: new ResultCache<SimilarityEvent[]>({ maxBytes: similarityMaxBytes, sizeOf: (v) => approximateBytes(v) }),
    similarityMaxBytes,
  };
}

/** The key of a result of `model` on `dataset` (undefined: none) under `params`. */
export function resultKey(model: LoadedModel, dataset: Dataset | undefined, params: Record<string, unknown>): string {
  const d = dataset?.summary;
  return cacheKey({
    modelSha256: model.sha256,
    dataset: d?.name ?? '',
    // What the images are computed from, beside the request: the model's preprocessing (a model file
    // loaded twice may be fed differently) and the data set's content identity (its files and
    // registration, services/data/identity.ts).
    params: { ...params, preprocessing: model.preprocessing, inputShape: model.inputShape, data: d && { path: d.path, format: d.format, identity: d.identity } },
  });
}

/** Drops every cached result on a data set (called when it is unregistered). */
export function dropDataset(caches: AnalysisCaches, dataset: DatasetSummary): void {
  for (const cache of [caches.averages, caches.similarity]) cache.deleteWhere((key) => keyOfDataset(key, dataset.name));
}

/** Counts one lookup of a request in the named cache. */
export function countLookup(observe: JobObserver, cache: 'averages' | 'similarity', hit: boolean): void {
  observe.cacheLookup(cache, hit);
}
