/**
 * AnalysisService. Thin handlers: each decodes and checks its request (INVALID_ARGUMENT naming the
 * field), calls a service, and streams the results out (./analysis-*.ts). Results that are expensive
 * to compute again (class averages, similarity streams) are cached per server (./analysis-cache.ts).
 */
import type { AnalysisServiceServer } from '../../api/generated/introspect/v1/analysis';
import type { App } from '../app';
import { serverStream, unary } from '../rpc';
import { classAveragesStream, confidenceMatrixCall, type AnalysisDeps } from './analysis-averages';
import { createAnalysisCaches, type AnalysisCaches } from './analysis-cache';
import { datasetExamplesStream } from './analysis-examples';
import { neuronImagesStream } from './analysis-neurons';
import { layerProbesStream, pruneStream } from './analysis-prune';
import { sanityCheckStream, similarityStream } from './analysis-similarity';

export function analysisHandlers(app: App, caches: AnalysisCaches = createAnalysisCaches()): AnalysisServiceServer {
  const rpc = app.rpc;
  const deps: AnalysisDeps = { app, caches };
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
