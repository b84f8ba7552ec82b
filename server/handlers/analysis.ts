/**
 * AnalysisService. Every RPC answers UNIMPLEMENTED until its handler is wired here; wiring one is a
 * few lines with the plumbing in ../rpc.ts, e.g.
 *
 *   classAverages: serverStream(deps, (req: ClassAveragesRequest, ctx) => classAveragesStream(app, req, ctx)),
 *
 *   async function* classAveragesStream(app: App, req: ClassAveragesRequest, ctx: RpcContext) {
 *     const { model, forward } = await modelContext(app, req.model, req.engine);   // ./common.ts
 *     const dataset = datasetNamed(app, req.dataset);
 *     for await (const a of classAverages({ dataset, forward, signal: ctx.signal, ... })) {
 *       app.metrics.imagesComputed.inc({ kind: 'class_average' });
 *       yield { classIndex: a.classIndex, image: { tensor: float32Tensor(a.image, [...model.inputShape]), png }, ... };
 *     }
 *   }
 *
 * Throw IntrospectErrors (invalidArgument naming the field, ...); the plumbing maps them to statuses,
 * honours backpressure, and aborts ctx.signal on cancel, deadline and shutdown.
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
