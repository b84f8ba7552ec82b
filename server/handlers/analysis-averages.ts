/** ClassAverages and ConfidenceMatrix: decode, run the job (services/jobs/averages.ts), encode. */
import type {
  ClassAverage,
  ClassAveragesRequest,
  ConfidenceMatrixRequest,
  ConfidenceMatrixResponse,
} from '../../api/generated/introspect/v1/analysis';
import type { Dataset } from '../../services/data/dataset';
import { toDisplayPixels } from '../../services/data/preprocess';
import { invalidArgument } from '../../services/errors';
import { encodePng } from '../../services/images/png';
import { classAverageImages, runConfidence, type ConfidenceJob } from '../../services/jobs/averages';
import type { LoadedModel } from '../../services/models/model';
import type { RpcContext } from '../rpc';
import { decodeTensor, float32Tensor } from '../tensors';
import type { AnalysisDeps } from './analysis';
import { averageFromWire } from './analysis-requests';
import { analysedClasses } from './analysis-selections';
import { datasetNamed, modelContext, type ModelContext } from './common';

/** An input-space image as display pixels → PNG. */
function inputImagePng(image: Float32Array, model: LoadedModel): Buffer {
  const [C, H, W] = model.inputShape;
  if (C !== 1 && C !== 3) throw invalidArgument(`PNG output needs a model with 1 or 3 input channels; '${model.name}' has ${C}`);
  return encodePng(toDisplayPixels(image, model.inputShape, model.preprocessing), H, W, C);
}

function className(dataset: Dataset | undefined, model: LoadedModel, c: number): string {
  return dataset?.summary.classNames[c] ?? model.classNames[c] ?? String(c);
}

export async function* classAveragesStream(deps: AnalysisDeps, req: ClassAveragesRequest, ctx: RpcContext): AsyncGenerator<ClassAverage> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const settings = averageFromWire(req.average);
  const classes = analysedClasses(req.classes, mc.model, dataset);
  for await (const a of classAverageImages(deps.jobs, { mc, dataset, settings, classes, score: true }, ctx.signal)) {
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

async function confidenceJobFromWire(deps: AnalysisDeps, req: ConfidenceMatrixRequest, mc: ModelContext): Promise<ConfidenceJob> {
  const model = mc.model;
  const hasImages = req.images !== undefined;
  const hasDataset = req.dataset !== '';
  if (hasImages && hasDataset) throw invalidArgument('give either dataset (class averages) or images, not both');
  if (!hasImages && !hasDataset) throw invalidArgument('dataset or images is required: class averages of a data set, or explicit images [N, C, H, W]');
  if (!hasImages) {
    const dataset = datasetNamed(deps.app, req.dataset);
    const settings = averageFromWire(req.average);
    return { mc, averages: { mc, dataset, settings, classes: analysedClasses([], model, dataset), score: false } };
  }
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
  return { mc, images: t.data, n: s[0]! };
}

export async function confidenceMatrixCall(deps: AnalysisDeps, req: ConfidenceMatrixRequest, ctx: RpcContext): Promise<ConfidenceMatrixResponse> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const r = await runConfidence(deps.jobs, await confidenceJobFromWire(deps, req, mc), ctx.signal);
  return {
    n: r.n,
    probabilities: Array.from(r.probabilities),
    classes: r.classes,
    classNames: Array.from({ length: r.classes }, (_, c) => mc.model.classNames[c] ?? String(c)),
    diagonal: r.diagonal,
  };
}
