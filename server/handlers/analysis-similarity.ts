/**
 * Similarity (served from the similarity cache on a repeat, with `cached: true`) and SanityCheck.
 * Both start from the class-average images of the request's data set.
 */
import { createHash } from 'node:crypto';
import type {
  LayerSimilarity as WireLayerSimilarity,
  RankedNeuron as WireRankedNeuron,
  SanityCheckRequest,
  SanityCheckResponse,
  SimilarityCurves as WireCurves,
  SimilarityRequest,
  SimilarityResponse,
} from '../../api/generated/introspect/v1/analysis';
import { approximateBytes } from '../../services/analysis/cache';
import type { MetricName } from '../../services/analysis/metrics';
import type { AttributionSettings } from '../../services/analysis/neuron-images';
import { sanityCheck } from '../../services/analysis/sanity';
import {
  similarity,
  type LayerSimilarity,
  type RankedNeuron,
  type SimilarityCurves,
  type SimilarityMethodNumber,
} from '../../services/analysis/similarity';
import type { Dataset } from '../../services/data/dataset';
import type { Shape3 } from '../../services/data/preprocess';
import { invalidArgument } from '../../services/errors';
import { attributionToPng } from '../../services/images/png';
import type { RpcContext } from '../rpc';
import { float32Tensor } from '../tensors';
import { countLookup, resultKey } from './analysis-cache';
import { analysedClasses, collectAverages, type AnalysisDeps } from './analysis-averages';
import {
  attributionFromWire,
  averageFromWire,
  field,
  layerIndicesFromWire,
  similarityMethodFromWire,
  similarityMetricFromWire,
  type AverageSettings,
} from './analysis-requests';
import { datasetNamed, modelContext, type ModelContext } from './common';

/** Most ranked neurons per end one request may ask images for. */
const MAX_RANK_IMAGES = 1024;

/** A SimilarityRequest checked and resolved (defaults filled in). */
export interface SimilarityJob {
  mc: ModelContext;
  dataset: Dataset;
  average: AverageSettings;
  method: SimilarityMethodNumber;
  metric: MetricName;
  layers: number[];
  classes: number[];
  attribution: AttributionSettings;
  rankImages: number;
  png: boolean;
}

export async function similarityJob(deps: AnalysisDeps, req: SimilarityRequest | undefined, prefix = ''): Promise<SimilarityJob> {
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
    png: req.png,
  };
}

/** The class-average images of a job's classes (from the averages cache when there). */
async function jobAverages(deps: AnalysisDeps, job: SimilarityJob, signal: AbortSignal): Promise<{ classIndex: number; image: Float32Array }[]> {
  const averages = await collectAverages(deps, { mc: job.mc, dataset: job.dataset, settings: job.average, classes: job.classes, score: false, signal });
  return averages.map((a) => ({ classIndex: a.classIndex, image: a.image }));
}

/** What determines a job's result (the cache key's parameters). */
function jobParams(job: SimilarityJob): Record<string, unknown> {
  const { igBaseline, ...attribution } = job.attribution;
  return {
    analysis: 'similarity',
    engine: job.mc.kind,
    average: job.average,
    method: job.method,
    metric: job.metric,
    layers: job.layers,
    classes: job.classes,
    attribution: { ...attribution, igBaseline: igBaseline && createHash('sha256').update(new Uint8Array(igBaseline.buffer, igBaseline.byteOffset, igBaseline.byteLength)).digest('hex') },
    rankImages: job.rankImages,
    png: job.png,
  };
}

function rankedToWire(n: RankedNeuron, shape: Shape3, png: boolean): WireRankedNeuron {
  return {
    neuron: n.neuron,
    value: n.value,
    image: { tensor: float32Tensor(n.image, [...shape]), png: png ? attributionToPng(n.image, shape) : Buffer.alloc(0) },
  };
}

export function layerToWire(l: LayerSimilarity, shape: Shape3, png: boolean): WireLayerSimilarity {
  return {
    classIndex: l.classIndex,
    layer: l.layer,
    values: Array.from(l.values),
    dead: [...l.dead],
    mean: l.mean,
    std: l.std,
    lowest: l.lowest.map((n) => rankedToWire(n, shape, png)),
    highest: l.highest.map((n) => rankedToWire(n, shape, png)),
  };
}

export function curvesToWire(c: SimilarityCurves): WireCurves {
  return {
    classes: c.classes.length,
    layers: c.layers.length,
    mean: Array.from(c.mean),
    std: Array.from(c.std),
    meanOverClasses: Array.from(c.meanOverClasses),
    stdOverClasses: Array.from(c.stdOverClasses),
    deadCount: Array.from(c.deadCount),
    layerIndices: [...c.layers],
  };
}

export async function* similarityStream(deps: AnalysisDeps, req: SimilarityRequest, ctx: RpcContext): AsyncGenerator<SimilarityResponse> {
  const { app, caches } = deps;
  const job = await similarityJob(deps, req);
  const key = resultKey(job.mc.model, job.dataset, jobParams(job));
  const hit = caches.similarity.get(key);
  countLookup(app, 'similarity', hit !== undefined);
  if (hit) {
    for (const msg of hit) yield { ...msg, cached: true };
    return;
  }
  const averages = await jobAverages(deps, job, ctx.signal);
  const shape = job.mc.model.inputShape;
  let sent: SimilarityResponse[] | undefined = [];
  let sentBytes = 0;
  let counted = 0;
  for await (const e of similarity({
    engine: job.mc.engine,
    model: job.mc.model.engineModel,
    averages,
    method: job.method,
    metric: job.metric,
    layers: job.layers,
    classes: job.classes,
    attribution: job.attribution,
    rankImages: job.rankImages,
    signal: ctx.signal,
  })) {
    app.metrics.imagesComputed.inc({ kind: 'neuron_image' }, e.done - counted);
    counted = e.done;
    const progress = { done: e.done, total: e.total };
    let msg: SimilarityResponse;
    if (e.kind === 'layer') msg = { progress, item: { $case: 'layer', value: layerToWire(e.layer, shape, job.png) }, cached: false };
    else if (e.kind === 'summary') msg = { progress, item: { $case: 'summary', value: curvesToWire(e.curves) }, cached: false };
    else msg = { progress, cached: false };
    // Collect for the cache only while the stream fits it: a larger one is streamed and not stored.
    if (sent) {
      sentBytes += approximateBytes(msg);
      if (sentBytes <= caches.similarityMaxBytes) sent.push(msg);
      else sent = undefined;
    }
    yield msg;
  }
  // Only a stream that ran to its end is stored.
  if (sent) caches.similarity.set(key, sent);
}

export async function* sanityCheckStream(deps: AnalysisDeps, req: SanityCheckRequest, ctx: RpcContext): AsyncGenerator<SanityCheckResponse> {
  const job = await similarityJob(deps, req.similarity, 'similarity');
  // uint64 on the wire; the re-initialisation's generator takes a safe integer.
  if (!Number.isSafeInteger(req.seed) || req.seed < 0) throw invalidArgument(`seed = ${req.seed} must be an integer 0..${Number.MAX_SAFE_INTEGER}`);
  const averages = await jobAverages(deps, job, ctx.signal);
  const model = job.mc.model.engineModel;
  for await (const d of sanityCheck({
    engine: job.mc.engine,
    model,
    averages,
    method: job.method,
    metric: job.metric,
    layers: job.layers,
    classes: job.classes,
    attribution: job.attribution,
    seed: req.seed,
    maxDepth: req.maxDepth,
    signal: ctx.signal,
  })) {
    const images = d.recomputed.reduce((n, l) => n + model.convLayers[l]!.channels, 0) * job.classes.length;
    deps.app.metrics.imagesComputed.inc({ kind: 'neuron_image' }, images);
    yield {
      progress: { done: d.done, total: d.total },
      depth: d.depth,
      reinitialised: [...d.reinitialised],
      curves: curvesToWire(d.curves),
      difference: Array.from(d.difference),
    };
  }
}
