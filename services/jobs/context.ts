/**
 * What the analysis jobs run with. A job takes a request that was decoded and checked at the boundary
 * (model and data set already looked up) and this context: the result caches, and an observer that is
 * told what the job did (the server counts it into its metrics; bench and tests may ignore it).
 */
import type { Forward } from '../analysis/forward';
import type { Engine, EngineKind } from '../engines/engine';
import type { LoadedModel } from '../models/model';
import { createAnalysisCaches, type AnalysisCaches } from './cache';

/** A model and the engine a job runs it on. */
export interface ModelContext {
  model: LoadedModel;
  kind: EngineKind;
  engine: Engine;
  /** Logits for a batch of the model's input, on that engine (the server times it into its metrics). */
  forward: Forward;
}

export interface JobObserver {
  /** `n` images computed now (class-average images, or attribution images of neurons and logits). */
  imagesComputed(kind: 'class_average' | 'neuron_image', n: number): void;
  /** One lookup of a request in a result cache. */
  cacheLookup(cache: 'averages' | 'similarity', hit: boolean): void;
}

export interface JobContext {
  caches: AnalysisCaches;
  observe: JobObserver;
}

const IGNORE: JobObserver = { imagesComputed: () => undefined, cacheLookup: () => undefined };

/** A context of its own (fresh caches; nothing observed unless asked), for bench and scripts. */
export function jobContext(opts: { caches?: AnalysisCaches; observe?: Partial<JobObserver> } = {}): JobContext {
  return { caches: opts.caches ?? createAnalysisCaches(), observe: { ...IGNORE, ...opts.observe } };
}
