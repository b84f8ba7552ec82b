/** Similarity and SanityCheck: decode, run the job (services/jobs/similarity.ts), encode. */
import type {
  SanityCheckRequest,
  SanityCheckResponse,
  SimilarityRequest,
  SimilarityResponse,
} from '../../api/generated/introspect/v1/analysis';
import { invalidArgument } from '../../services/errors';
import { runSanityCheck, runSimilarity, type SimilarityJob } from '../../services/jobs/similarity';
import type { RpcContext } from '../rpc';
import type { AnalysisDeps } from './analysis';
import { curvesToWire, layerToWire } from './analysis-encode';
import { attributionFromWire, averageFromWire, field, similarityMethodFromWire, similarityMetricFromWire } from './analysis-requests';
import { analysedClasses, layerIndicesFromWire } from './analysis-selections';
import { datasetNamed, modelContext } from './common';

/** Most ranked neurons per end one request may ask images for. */
const MAX_RANK_IMAGES = 1024;

/** A SimilarityRequest (at `prefix` in its message) checked and resolved. */
export async function similarityJobFromWire(deps: AnalysisDeps, req: SimilarityRequest | undefined, prefix = ''): Promise<SimilarityJob> {
  if (!req) throw invalidArgument(`${prefix} is required`);
  const f = (name: string): string => field(prefix, name);
  const mc = await modelContext(deps.app, req.model, req.engine, f('model'));
  const model = mc.model.engineModel;
  const dataset = datasetNamed(deps.app, req.dataset, f('dataset'));
  if (req.rankImages > MAX_RANK_IMAGES) throw invalidArgument(`${f('rank_images')} = ${req.rankImages} is too large (at most ${MAX_RANK_IMAGES})`);
  return {
    mc,
    dataset,
    average: averageFromWire(req.average, f('average')),
    method: similarityMethodFromWire(req.method, f('method')),
    metric: similarityMetricFromWire(req.metric, f('metric')),
    layers: layerIndicesFromWire(req.layers, model, f('layers')),
    classes: analysedClasses(req.classes, mc.model, dataset, f('classes')),
    attribution: attributionFromWire(req.attribution, model, f('attribution')),
    rankImages: req.rankImages,
  };
}

export async function* similarityStream(deps: AnalysisDeps, req: SimilarityRequest, ctx: RpcContext): AsyncGenerator<SimilarityResponse> {
  const job = await similarityJobFromWire(deps, req);
  const shape = job.mc.model.inputShape;
  for await (const { event: e, cached } of runSimilarity(deps.jobs, job, ctx.signal)) {
    const progress = { done: e.done, total: e.total };
    if (e.kind === 'layer') yield { progress, item: { $case: 'layer', value: layerToWire(e.layer, shape, req.png) }, cached };
    else if (e.kind === 'summary') yield { progress, item: { $case: 'summary', value: curvesToWire(e.curves) }, cached };
    else yield { progress, cached };
  }
}

export async function* sanityCheckStream(deps: AnalysisDeps, req: SanityCheckRequest, ctx: RpcContext): AsyncGenerator<SanityCheckResponse> {
  const similarity = await similarityJobFromWire(deps, req.similarity, 'similarity');
  // uint64 on the wire; the re-initialisation's generator takes a safe integer.
  if (!Number.isSafeInteger(req.seed) || req.seed < 0) throw invalidArgument(`seed = ${req.seed} must be an integer 0..${Number.MAX_SAFE_INTEGER}`);
  for await (const d of runSanityCheck(deps.jobs, { similarity, seed: req.seed, maxDepth: req.maxDepth }, ctx.signal)) {
    yield {
      progress: { done: d.done, total: d.total },
      depth: d.depth,
      reinitialised: [...d.reinitialised],
      curves: curvesToWire(d.curves),
      difference: Array.from(d.difference),
    };
  }
}
