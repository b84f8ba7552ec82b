/**
 * AnalysisService. Every RPC answers UNIMPLEMENTED until its handler is wired here; wiring one is a
 * few lines with the plumbing in ../rpc.ts, e.g.
 *
 *   classAverages: serverStream(deps, (req: ClassAveragesRequest, ctx) => classAveragesStream(app, req, ctx)),
 *
 * where classAveragesStream is an async generator that validates the request, calls the service in
 * services/analysis and yields wire messages.
 */
import type { AnalysisServiceServer } from '../../clients/generated/introspect/v1/analysis';
import type { App } from '../app';
import { notYetServerStream, notYetUnary } from '../rpc';

export function analysisHandlers(app: App): AnalysisServiceServer {
  const deps = app.rpc;
  const rpc = (m: string): string => `AnalysisService.${m}`;
  return {
    classAverages: notYetServerStream(deps, rpc('ClassAverages')),
    confidenceMatrix: notYetUnary(deps, rpc('ConfidenceMatrix')),
    neuronImages: notYetServerStream(deps, rpc('NeuronImages')),
    similarity: notYetServerStream(deps, rpc('Similarity')),
    datasetExamples: notYetServerStream(deps, rpc('DatasetExamples')),
    sanityCheck: notYetServerStream(deps, rpc('SanityCheck')),
    prune: notYetServerStream(deps, rpc('Prune')),
    layerProbes: notYetServerStream(deps, rpc('LayerProbes')),
  };
}
