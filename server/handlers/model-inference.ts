/** Predict and Evaluate: decode, run the model (services/analysis), encode. */
import type { EvaluateRequest, EvaluateResponse, PredictRequest, PredictResponse, Prediction } from '../../api/generated/introspect/v1/models';
import { DEFAULT_EVAL_BATCH, evaluate } from '../../services/analysis/evaluate';
import { rankPredictions } from '../../services/analysis/predict';
import type { App } from '../app';
import { splitFromWire } from '../convert';
import { predictInput } from '../predict-input';
import type { RpcContext } from '../rpc';
import { float32Tensor } from '../tensors';
import { datasetNamed, modelContext } from './common';

export async function predict(app: App, req: PredictRequest, ctx: RpcContext): Promise<PredictResponse> {
  const { model, forward } = await modelContext(app, req.model, req.engine);
  const { input, n } = await predictInput(req, model, app, ctx.signal);
  const logits = await forward(input, n, ctx.signal);
  const predictions: Prediction[] = rankPredictions(logits, n, req.top > 0 ? req.top : 5, model.classNames).map((p) => ({
    top: p.top,
    logits: float32Tensor(p.logits, [p.logits.length]),
  }));
  app.metrics.imagesComputed.inc({ kind: 'prediction' }, n);
  return { predictions };
}

export async function* evaluateStream(app: App, req: EvaluateRequest, ctx: RpcContext): AsyncGenerator<EvaluateResponse> {
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
    batchSize: app.memory.batchSize(model, req.batchSize, DEFAULT_EVAL_BATCH, 'Evaluate'),
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
