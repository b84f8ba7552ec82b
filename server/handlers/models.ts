/** ModelService: load, upload (./model-upload.ts), describe, list, unload; predict and evaluate (./model-inference.ts). */
import type {
  EvaluateRequest,
  GetModelRequest,
  ListModelsRequest,
  ListModelsResponse,
  LoadModelRequest,
  ModelInfo,
  ModelServiceServer,
  PredictRequest,
  UnloadModelRequest,
  UnloadModelResponse,
  UploadModelRequest,
} from '../../api/generated/introspect/v1/models';
import { describeModel } from '../../services/models/info';
import type { LoadedModel } from '../../services/models/model';
import type { App } from '../app';
import { modelFormatFromWire, modelInfoToWire, preprocessingFromWire, requireName } from '../convert';
import { clientStream, serverStream, unary } from '../rpc';
import { evaluateStream, predict } from './model-inference';
import { receiveUpload } from './model-upload';

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
