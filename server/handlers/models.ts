/** ModelService: load, upload, describe, list, unload, predict, evaluate. */
import type {
  EvaluateRequest,
  EvaluateResponse,
  GetModelRequest,
  ListModelsRequest,
  ListModelsResponse,
  LoadModelRequest,
  ModelInfo,
  ModelServiceServer,
  PredictRequest,
  PredictResponse,
  Prediction,
  UnloadModelRequest,
  UnloadModelResponse,
  UploadModelHeader,
  UploadModelRequest,
} from '../../api/generated/introspect/v1/models';
import { evaluate } from '../../services/analysis/evaluate';
import { rankPredictions } from '../../services/analysis/predict';
import { invalidArgument, resourceExhausted } from '../../services/errors';
import { describeModel } from '../../services/models/info';
import type { LoadedModel } from '../../services/models/model';
import type { App } from '../app';
import {
  modelFormatFromWire,
  modelInfoToWire,
  preprocessingFromWire,
  requireName,
  splitFromWire,
} from '../convert';
import { predictInput } from '../predict-input';
import { clientStream, serverStream, unary, type RpcContext } from '../rpc';
import { float32Tensor } from '../tensors';
import { datasetNamed, modelContext } from './common';

export function modelHandlers(app: App): ModelServiceServer {
  const deps = app.rpc;
  const info = (m: LoadedModel): ModelInfo => modelInfoToWire(describeModel(m), app.engineStatuses());

  return {
    loadModel: unary(deps, async (req: LoadModelRequest, ctx) => {
      const model = await app.models.loadFromPath({
        name: requireName(req.name, 'name'),
        path: requireName(req.path, 'path'),
        format: modelFormatFromWire(req.format),
        preprocessing: preprocessingFromWire(req.preprocessing),
        classNames: req.classNames,
        sidecarPath: req.sidecarPath || undefined,
      });
      ctx.log.info('model loaded', { model: model.name, source: model.source, sha256: model.sha256, bytes: model.sizeBytes });
      return info(model);
    }),

    uploadModel: clientStream(deps, async (requests: AsyncIterable<UploadModelRequest>, ctx) => {
      const upload = await receiveUpload(requests, app.models.maxUploadBytes, (name) => app.models.assertNameFree(name));
      const model = await app.models.loadFromBytes({
        name: upload.header.name,
        bytes: upload.bytes,
        format: 'onnx',
        preprocessing: preprocessingFromWire(upload.header.preprocessing, 'header.preprocessing'),
        classNames: upload.header.classNames,
      });
      ctx.log.info('model uploaded', { model: model.name, sha256: model.sha256, bytes: model.sizeBytes });
      return info(model);
    }),

    getModel: unary(deps, async (req: GetModelRequest) =>
      modelInfoToWire(app.models.describe(requireName(req.name, 'name')), app.engineStatuses()),
    ),

    listModels: unary(deps, async (_req: ListModelsRequest): Promise<ListModelsResponse> => {
      const engines = app.engineStatuses();
      return { models: app.models.list().map((d) => modelInfoToWire(d, engines)) };
    }),

    unloadModel: unary(deps, async (req: UnloadModelRequest, ctx): Promise<UnloadModelResponse> => {
      app.models.unload(requireName(req.name, 'name'));
      ctx.log.info('model unloaded', { model: req.name });
      return { unloaded: true };
    }),

    predict: unary(deps, async (req: PredictRequest, ctx) => predict(app, req, ctx)),

    evaluate: serverStream(deps, (req: EvaluateRequest, ctx) => evaluateStream(app, req, ctx)),
  };
}

interface Upload {
  header: UploadModelHeader;
  bytes: Buffer;
}

/**
 * Reads an upload: header first (checked at once: name free, format ONNX, announced size within the
 * limit), then chunks, stopping as soon as the bytes pass the limit or the announced size.
 */
export async function receiveUpload(
  requests: AsyncIterable<UploadModelRequest>,
  maxBytes: number,
  assertNameFree: (name: string) => void,
): Promise<Upload> {
  let header: UploadModelHeader | undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const msg of requests) {
    const part = msg.part;
    if (!header) {
      if (part?.$case !== 'header') throw invalidArgument('header: the first UploadModel message must carry the header');
      header = part.value;
      assertNameFree(requireName(header.name, 'header.name'));
      const format = modelFormatFromWire(header.format, 'header.format');
      if (format && format !== 'onnx') {
        throw invalidArgument('header.format: uploads take ONNX models only; load tfjs models from the model root with LoadModel');
      }
      if (!(header.sizeBytes > 0)) throw invalidArgument('header.size_bytes is required: the size of the file in bytes');
      if (header.sizeBytes > maxBytes) {
        throw resourceExhausted(`header.size_bytes: ${header.sizeBytes} bytes is more than the server's upload limit of ${maxBytes} bytes`);
      }
      continue;
    }
    if (part?.$case === 'header') throw invalidArgument('header: only the first UploadModel message may carry a header');
    if (part?.$case !== 'chunk') throw invalidArgument('chunk: every message after the header must carry a chunk');
    received += part.value.byteLength;
    if (received > maxBytes) {
      throw resourceExhausted(`the upload passed the server's limit of ${maxBytes} bytes`);
    }
    if (received > header.sizeBytes) {
      throw invalidArgument(`header.size_bytes announced ${header.sizeBytes} bytes but more arrived`);
    }
    chunks.push(part.value);
  }
  if (!header) throw invalidArgument('header: the upload carried no messages');
  if (received !== header.sizeBytes) {
    throw invalidArgument(`header.size_bytes announced ${header.sizeBytes} bytes but the upload carried ${received}`);
  }
  return { header, bytes: Buffer.concat(chunks, received) };
}

async function predict(app: App, req: PredictRequest, ctx: RpcContext): Promise<PredictResponse> {
  const { model, forward } = await modelContext(app, req.model, req.engine);
  const { input, n } = predictInput(req, model);
  const logits = await forward(input, n, ctx.signal);
  const predictions: Prediction[] = rankPredictions(logits, n, req.top > 0 ? req.top : 5, model.classNames).map((p) => ({
    top: p.top,
    logits: float32Tensor(p.logits, [p.logits.length]),
  }));
  app.metrics.imagesComputed.inc({ kind: 'prediction' }, n);
  return { predictions };
}

async function* evaluateStream(app: App, req: EvaluateRequest, ctx: RpcContext): AsyncGenerator<EvaluateResponse> {
  const { model, forward } = await modelContext(app, req.model, req.engine);
  const dataset = datasetNamed(app, req.dataset);
  const classNames = dataset.summary.classNames;
  let reported = 0;
  for await (const update of evaluate({
    dataset,
    split: splitFromWire(req.split),
    preprocessing: model.preprocessing,
    inputShape: model.inputShape,
    forward,
    limit: req.limit,
    batchSize: req.batchSize,
    signal: ctx.signal,
  })) {
    app.metrics.imagesComputed.inc({ kind: 'evaluation' }, update.progress.done - reported);
    reported = update.progress.done;
    const r = update.result;
    yield {
      progress: { done: update.progress.done, total: update.progress.total },
      result: r && {
        count: r.count,
        correct: r.correct,
        accuracy: r.accuracy,
        loss: r.loss,
        perClass: r.perClass.map((c, i) => ({
          classIndex: i,
          className: classNames[i] ?? String(i),
          count: c.count,
          correct: c.correct,
          accuracy: c.accuracy,
          loss: c.loss,
        })),
        seconds: r.seconds,
        imagesPerSecond: r.imagesPerSecond,
      },
    };
  }
}
