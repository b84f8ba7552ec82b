/**
 * ClassAverages and ConfidenceMatrix, and the class-average images other analyses start from
 * (`classAverageImages`), served from the averages cache where they were computed before.
 */
import type {
  ClassAverage,
  ClassAveragesRequest,
  ConfidenceMatrixRequest,
  ConfidenceMatrixResponse,
} from '../../api/generated/introspect/v1/analysis';
import { activationMaxAverages } from '../../services/analysis/activation-max';
import { classAverages } from '../../services/analysis/averages';
import { confidenceMatrix } from '../../services/analysis/confidence';
import type { Dataset } from '../../services/data/dataset';
import { toDisplayPixels } from '../../services/data/preprocess';
import { IntrospectError, invalidArgument } from '../../services/errors';
import { encodePng } from '../../services/images/png';
import type { LoadedModel } from '../../services/models/model';
import type { App } from '../app';
import type { RpcContext } from '../rpc';
import { decodeTensor, float32Tensor } from '../tensors';
import { countLookup, resultKey, type AnalysisCaches, type CachedAverage } from './analysis-cache';
import { averageFromWire, classesFromWire, type AverageSettings } from './analysis-requests';
import { datasetNamed, modelContext, type ModelContext } from './common';

export interface AnalysisDeps {
  app: App;
  caches: AnalysisCaches;
}

export interface AverageJob {
  mc: ModelContext;
  dataset: Dataset;
  settings: AverageSettings;
  /** Class indices (checked), in the order wanted. */
  classes: number[];
  /** Also score the images averaged (fills meanConfidence for the mean). */
  score: boolean;
  signal: AbortSignal;
}

export interface AverageItem extends CachedAverage {
  /** Computed now (false: from the cache). */
  computed: boolean;
  done: number;
  total: number;
}

/** The services' class averages of the classes given, in their order. */
function computeAverages(job: AverageJob, classes: number[]): AsyncGenerator<CachedAverage> {
  const { mc, dataset, settings: s, signal } = job;
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
export async function* classAverageImages(deps: AnalysisDeps, job: AverageJob): AsyncGenerator<AverageItem> {
  const { app, caches } = deps;
  const key = (c: number): string =>
    resultKey(job.mc.model, job.dataset, { average: job.settings, classIndex: c, engine: job.mc.kind });
  const usable = (e: CachedAverage | undefined): e is CachedAverage => e !== undefined && (!job.score || e.imagesScored > 0);
  const found = new Map<number, CachedAverage>();
  for (const c of job.classes) {
    const e = caches.averages.get(key(c));
    if (usable(e)) found.set(c, e);
  }
  const missing = job.classes.filter((c) => !found.has(c));
  countLookup(app, 'averages', missing.length === 0);
  const computed = missing.length > 0 ? computeAverages(job, missing) : undefined;
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
        app.metrics.imagesComputed.inc({ kind: 'class_average' });
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
export async function collectAverages(deps: AnalysisDeps, job: AverageJob): Promise<AverageItem[]> {
  const out: AverageItem[] = [];
  for await (const a of classAverageImages(deps, job)) out.push(a);
  return out;
}

/** An input-space image as display pixels → PNG. */
export function inputImagePng(image: Float32Array, model: LoadedModel): Buffer {
  const [C, H, W] = model.inputShape;
  if (C !== 1 && C !== 3) throw invalidArgument(`PNG output needs a model with 1 or 3 input channels; '${model.name}' has ${C}`);
  return encodePng(toDisplayPixels(image, model.inputShape, model.preprocessing), H, W, C);
}

/** Classes of a data set the model can score: indices below both counts (default all of them). */
export function analysedClasses(classes: number[], model: LoadedModel, dataset: Dataset, name = 'classes'): number[] {
  const ds = dataset.summary.classNames.length;
  const mc = model.engineModel.classes;
  const what = ds <= mc ? `dataset '${dataset.summary.name}'` : `model '${model.name}' (its output)`;
  return classesFromWire(classes, Math.min(ds, mc), what, name);
}

export function className(dataset: Dataset | undefined, model: LoadedModel, c: number): string {
  return dataset?.summary.classNames[c] ?? model.classNames[c] ?? String(c);
}

export async function* classAveragesStream(deps: AnalysisDeps, req: ClassAveragesRequest, ctx: RpcContext): AsyncGenerator<ClassAverage> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const settings = averageFromWire(req.average);
  const classes = analysedClasses(req.classes, mc.model, dataset);
  const job: AverageJob = { mc, dataset, settings, classes, score: true, signal: ctx.signal };
  for await (const a of classAverageImages(deps, job)) {
    yield {
      classIndex: a.classIndex,
      className: className(dataset, mc.model, a.classIndex),
      image: {
        tensor: float32Tensor(a.image, [...mc.model.inputShape]),
        png: req.png ? inputImagePng(a.image, mc.model) : Buffer.alloc(0),
      },
      imagesUsed: a.imagesUsed,
      meanConfidence: a.meanConfidence,
      averageConfidence: a.averageConfidence,
      predictedClass: a.predictedClass,
      steps: a.steps ?? 0,
      progress: { done: a.done, total: a.total },
    };
  }
}

/** Most images one explicit ConfidenceMatrix call takes. */
const MAX_CONFIDENCE_IMAGES = 1024;

export async function confidenceMatrixCall(deps: AnalysisDeps, req: ConfidenceMatrixRequest, ctx: RpcContext): Promise<ConfidenceMatrixResponse> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const model = mc.model;
  const hasImages = req.images !== undefined;
  const hasDataset = req.dataset !== '';
  if (hasImages && hasDataset) throw invalidArgument('give either dataset (class averages) or images, not both');
  if (!hasImages && !hasDataset) throw invalidArgument('dataset or images is required: class averages of a data set, or explicit images [N, C, H, W]');
  let images: Float32Array;
  let n: number;
  let rowClasses: number[] | undefined;
  if (hasImages) {
    if (req.average) throw invalidArgument('average applies to dataset averages; it cannot be given with images');
    const t = decodeTensor(req.images, 'images');
    const [C, H, W] = model.inputShape;
    if (t.dtype !== 'float32') throw invalidArgument("images.dtype must be FLOAT32 (images in the model's input space)");
    const s = t.shape;
    if (s.length !== 4 || s[1] !== C || s[2] !== H || s[3] !== W) {
      throw invalidArgument(`images.shape [${s.join(', ')}] must be [N, ${C}, ${H}, ${W}] (the model's input)`);
    }
    if (s[0]! > MAX_CONFIDENCE_IMAGES) throw invalidArgument(`images: ${s[0]} images in one call; at most ${MAX_CONFIDENCE_IMAGES}`);
    if (!t.data.every((v) => Number.isFinite(v))) throw invalidArgument('images: values must be finite');
    images = t.data;
    n = s[0]!;
  } else {
    const dataset = datasetNamed(deps.app, req.dataset);
    const settings = averageFromWire(req.average);
    const classes = analysedClasses([], model, dataset);
    const averages = await collectAverages(deps, { mc, dataset, settings, classes, score: false, signal: ctx.signal });
    const plane = model.inputShape.reduce((a, b) => a * b, 1);
    images = new Float32Array(averages.length * plane);
    averages.forEach((a, r) => images.set(a.image, r * plane));
    n = averages.length;
    rowClasses = averages.map((a) => a.classIndex);
  }
  const { probabilities, classes } = await confidenceMatrix(images, n, mc.forward, ctx.signal);
  // Row r of dataset averages belongs to class rowClasses[r]; explicit images are taken as classes 0..n-1.
  const rows = rowClasses ?? Array.from({ length: n }, (_, r) => r);
  const diagonal = rows.every((c) => c < classes) ? rows.map((c, r) => probabilities[r * classes + c]!) : [];
  return {
    n,
    probabilities: Array.from(probabilities),
    classes,
    classNames: Array.from({ length: classes }, (_, c) => model.classNames[c] ?? String(c)),
    diagonal,
  };
}
