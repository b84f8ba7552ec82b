/**
 * AnalysisService. Thin handlers: each decodes and checks its request once (INVALID_ARGUMENT naming
 * the field), runs the job (services/jobs), and encodes the results (./analysis-*.ts). The jobs'
 * context holds the per-server result caches (services/jobs/cache.ts) and tells the server's metrics
 * what was computed and looked up.
 */
import type { AnalysisServiceServer } from '../../api/generated/introspect/v1/analysis';
import { createAnalysisCaches, dropDataset, type AnalysisCaches } from '../../services/jobs/cache';
import type { JobContext } from '../../services/jobs/context';
import type { App } from '../app';
import { serverStream, unary } from '../rpc';
import { classAveragesStream, confidenceMatrixCall } from './analysis-averages';
import { datasetExamplesStream } from './analysis-examples';
import { neuronImagesStream } from './analysis-neurons';
import { layerProbesStream, pruneStream } from './analysis-prune';
import { sanityCheckStream, similarityStream } from './analysis-similarity';

/** What the analysis handlers use: the app (registries, engines) to decode, the jobs' context to run. */
export interface AnalysisDeps {
  app: App;
  jobs: JobContext;
}

export function analysisHandlers(app: App, caches: AnalysisCaches = createAnalysisCaches()): AnalysisServiceServer {
  const rpc = app.rpc;
  const jobs: JobContext = {
    caches,
    observe: {
      imagesComputed: (kind, n) => app.metrics.imagesComputed.inc({ kind }, n),
      cacheLookup: (cache, hit) => (hit ? app.metrics.cacheHits : app.metrics.cacheMisses).inc({ cache }),
    },
  };
  const deps: AnalysisDeps = { app, jobs };
  app.datasets.onUnregister((dataset) => dropDataset(caches, dataset));
  for (const [name, cache] of [['averages', caches.averages], ['similarity', caches.similarity]] as const) {
    app.metrics.watchCache(name, () => ({ bytes: cache.bytes, capacityBytes: cache.maxBytes }));
  }
  return {
    classAverages: serverStream(rpc, (req, ctx) => classAveragesStream(deps, req, ctx)),
    confidenceMatrix: unary(rpc, (req, ctx) => confidenceMatrixCall(deps, req, ctx)),
    neuronImages: serverStream(rpc, (req, ctx) => neuronImagesStream(deps, req, ctx)),
    similarity: serverStream(rpc, (req, ctx) => similarityStream(deps, req, ctx)),
    datasetExamples: serverStream(rpc, (req, ctx) => datasetExamplesStream(deps, req, ctx)),
    sanityCheck: serverStream(rpc, (req, ctx) => sanityCheckStream(deps, req, ctx)),
    prune: serverStream(rpc, (req, ctx) => pruneStream(deps, req, ctx)),
    layerProbes: serverStream(rpc, (req, ctx) => layerProbesStream(deps, req, ctx)),
  };
}
