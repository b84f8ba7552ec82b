/**
 * The analyses of a report, run over RPC with the generated client: class averages (PNG), the
 * confidence matrix, similarity (methods 1 and 2 by default, with the highest/lowest neurons' images),
 * optionally the sanity check. Everything the report and its summary show comes back in `ReportRun`.
 */
import {
  AverageKind,
  SimilarityMethod,
  type Attribution,
  type AverageSpec,
  type ClassAverage,
  type ConfidenceMatrixResponse,
  type LayerSimilarity,
  type SanityCheckResponse,
  type SimilarityCurves,
  type SimilarityMetric,
} from '../../api/generated/introspect/v1/analysis';
import type { Engine } from '../../api/generated/introspect/v1/common';
import type { DatasetInfo } from '../../api/generated/introspect/v1/datasets';
import type { ModelInfo } from '../../api/generated/introspect/v1/models';
import type { CallOpts, IntrospectClient } from '../client';

export type MethodNumber = 1 | 2;

export interface ReportRequest {
  model: string;
  dataset: string;
  /** How the class images are made (averages, confidence, similarity); default the mean. */
  average?: Partial<AverageSpec>;
  /** Further kinds of class averages shown in the summary (e.g. top-k). */
  extraAverages?: Array<Partial<AverageSpec>>;
  /** Classes for averages and similarity (default all). The confidence matrix covers all classes. */
  classes?: number[];
  /** Conv layers for similarity (default all). */
  layers?: number[];
  /** Similarity methods, in the order run (default [1, 2]). */
  methods?: MethodNumber[];
  metric?: SimilarityMetric;
  attribution?: Partial<Attribution>;
  /** Highest/lowest neurons per (class, layer) with images (default 8). */
  rankImages?: number;
  /** Run the sanity check (cascading re-initialisation) with this seed and depth. */
  sanity?: { seed: number; maxDepth: number };
  engine?: Engine;
}

export interface SimilarityRun {
  method: MethodNumber;
  /** Class indices in the order of the curves' rows. */
  classes: number[];
  layers: LayerSimilarity[];
  curves: SimilarityCurves;
  /** The server answered from its cache. */
  cached: boolean;
}

export interface AveragesRun {
  spec: Partial<AverageSpec>;
  averages: ClassAverage[];
}

export interface ReportRun {
  request: ReportRequest;
  model: ModelInfo;
  dataset: DatasetInfo;
  averages: ClassAverage[];
  extraAverages: AveragesRun[];
  confidence: ConfidenceMatrixResponse;
  similarity: SimilarityRun[];
  sanity?: SanityCheckResponse[];
  startedAt: string;
  seconds: number;
}

export interface RunOptions {
  callOpts?: CallOpts;
  /** Called as each stage goes on (stage names: averages, confidence, similarity-1, similarity-2, sanity). */
  onProgress?: (stage: string, done: number, total: number) => void;
  /** Called when a stage ends. */
  onStageDone?: (stage: string) => void;
}

export const DEFAULT_RANK_IMAGES = 8;

function methodWire(m: MethodNumber): SimilarityMethod {
  return m === 1 ? SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE : SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP;
}

export function averageKindName(kind: AverageKind | undefined): string {
  switch (kind) {
    case AverageKind.AVERAGE_KIND_TOP_K:
      return 'top-k';
    case AverageKind.AVERAGE_KIND_BOTTOM_K:
      return 'bottom-k';
    case AverageKind.AVERAGE_KIND_ACTIVATION_MAX:
      return 'activation-max';
    default:
      return 'mean';
  }
}

async function averagesOf(client: IntrospectClient, req: ReportRequest, spec: Partial<AverageSpec>, stage: string, o: RunOptions): Promise<ClassAverage[]> {
  const out: ClassAverage[] = [];
  for await (const a of client.classAverages(
    { model: req.model, dataset: req.dataset, average: spec, classes: req.classes ?? [], png: true, engine: req.engine },
    o.callOpts,
  )) {
    out.push(a);
    if (a.progress) o.onProgress?.(stage, a.progress.done, a.progress.total);
  }
  o.onStageDone?.(stage);
  return out;
}

async function similarityOf(client: IntrospectClient, req: ReportRequest, method: MethodNumber, o: RunOptions): Promise<SimilarityRun> {
  const stage = `similarity-${method}`;
  const layers: LayerSimilarity[] = [];
  let curves: SimilarityCurves | undefined;
  let cached = false;
  for await (const msg of client.similarity(
    {
      model: req.model,
      dataset: req.dataset,
      average: req.average,
      method: methodWire(method),
      metric: req.metric,
      layers: req.layers ?? [],
      classes: req.classes ?? [],
      attribution: req.attribution,
      engine: req.engine,
      rankImages: req.rankImages ?? DEFAULT_RANK_IMAGES,
      png: true,
    },
    o.callOpts,
  )) {
    cached = msg.cached;
    if (msg.progress) o.onProgress?.(stage, msg.progress.done, msg.progress.total);
    if (msg.item?.$case === 'layer') layers.push(msg.item.value);
    else if (msg.item?.$case === 'summary') curves = msg.item.value;
  }
  o.onStageDone?.(stage);
  if (!curves) throw new Error(`similarity method ${method}: the stream ended without its summary`);
  const classes: number[] = [];
  for (const l of layers) if (!classes.includes(l.classIndex)) classes.push(l.classIndex);
  return { method, classes, layers, curves, cached };
}

async function sanityOf(client: IntrospectClient, req: ReportRequest, o: RunOptions): Promise<SanityCheckResponse[]> {
  const out: SanityCheckResponse[] = [];
  for await (const d of client.sanityCheck(
    {
      similarity: {
        model: req.model,
        dataset: req.dataset,
        average: req.average,
        method: methodWire(req.methods?.[0] ?? 1),
        metric: req.metric,
        layers: req.layers ?? [],
        classes: req.classes ?? [],
        attribution: req.attribution,
        engine: req.engine,
      },
      seed: req.sanity?.seed ?? 0,
      maxDepth: req.sanity?.maxDepth ?? 0,
    },
    o.callOpts,
  )) {
    out.push(d);
    if (d.progress) o.onProgress?.('sanity', d.progress.done, d.progress.total);
  }
  o.onStageDone?.('sanity');
  return out;
}

/** Runs every analysis of the report, one after the other, over RPC. */
export async function runReport(client: IntrospectClient, req: ReportRequest, o: RunOptions = {}): Promise<ReportRun> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const [model, dataset] = await Promise.all([client.getModel(req.model, o.callOpts), client.getDataset(req.dataset, o.callOpts)]);
  const average = req.average ?? {};
  const averages = await averagesOf(client, req, average, 'averages', o);
  const extraAverages: AveragesRun[] = [];
  for (const spec of req.extraAverages ?? []) {
    extraAverages.push({ spec, averages: await averagesOf(client, req, spec, `averages-${averageKindName(spec.kind)}`, o) });
  }
  const confidence = await client.confidenceMatrix({ model: req.model, dataset: req.dataset, average, engine: req.engine }, o.callOpts);
  o.onStageDone?.('confidence');
  const similarity: SimilarityRun[] = [];
  for (const m of req.methods ?? [1, 2]) similarity.push(await similarityOf(client, req, m, o));
  const sanity = req.sanity ? await sanityOf(client, req, o) : undefined;
  return { request: req, model, dataset, averages, extraAverages, confidence, similarity, sanity, startedAt, seconds: (Date.now() - started) / 1000 };
}
