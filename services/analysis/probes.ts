/**
 * Layer probes (SPEC §4, layer truncation): the pooled features of each chosen conv layer (spatial mean
 * of every channel after its activation) on the train split, a multinomial logistic-regression head
 * fitted on them, and its accuracy on the test split, overall and per class; beside it the full
 * model's accuracy on the same test images. One engine pass per split serves every layer.
 */
import type { Engine, EngineModel } from '../engines/engine';
import type { Dataset, SplitName } from '../data/dataset';
import { decodeSize, toInputSpace, type Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { invalidArgument, throwIfAborted } from '../errors';
import { fitLogistic, predictClass } from './logistic';
import { AccuracyTally } from './pruning-eval';

export const DEFAULT_PROBE_EPOCHS = 30;
export const DEFAULT_PROBE_L2 = 1e-4;

export interface ProbesOptions {
  engine: Engine;
  model: EngineModel;
  dataset: Dataset;
  preprocessing: PreprocessSpec;
  inputShape: Shape3;
  /** Conv layers; default all. */
  layers?: number[];
  /** First N images of the train / test split (0 or absent = all). */
  trainLimit?: number;
  testLimit?: number;
  /** L-BFGS iterations of the head; default 30. */
  epochs?: number;
  /** L2 penalty of the head; default 1e-4. */
  l2?: number;
  batchSize?: number;
  signal?: AbortSignal;
}

export interface ProbeResult {
  layer: number;
  features: number;
  trainAccuracy: number;
  testAccuracy: number;
  perClass: number[];
}

/** `done`/`total` count steps: the train pass, the test pass, then one per layer fitted. */
export type ProbesEvent =
  | { kind: 'features'; split: SplitName; images: number; done: number; total: number }
  | { kind: 'result'; result: ProbeResult; modelAccuracy: number; done: number; total: number };

interface Features {
  /** Per layer, [n, channels]. */
  byLayer: Map<number, Float32Array>;
  labels: Int32Array;
  n: number;
  /** The full model's accuracy on these images (test split only). */
  modelAccuracy?: number;
}

async function pooledFeatures(opts: ProbesOptions, split: SplitName, layers: number[], limit: number | undefined, withModel: boolean): Promise<Features> {
  const { engine, model, dataset, signal } = opts;
  const s = dataset.summary.splits.find((x) => x.split === split);
  if (!s) throw invalidArgument(`dataset '${dataset.summary.name}' has no ${split} split (layer probes train on train and test on test)`);
  const n = limit && limit > 0 ? Math.min(limit, s.count) : s.count;
  const byLayer = new Map(layers.map((l) => [l, new Float32Array(n * model.convLayers[l].channels)]));
  const labels = new Int32Array(n);
  const tally = new AccuracyTally(dataset.summary.classNames.length);
  const size = decodeSize(dataset.summary, opts.preprocessing, opts.inputShape);
  let at = 0;
  for await (const b of dataset.batches(split, { batchSize: opts.batchSize ?? 512, limit: n, size, signal })) {
    throwIfAborted(signal);
    const input = toInputSpace(b, opts.preprocessing, opts.inputShape);
    const logits = withModel ? engine.forward(model, input, b.n, { signal }) : undefined;
    logits?.catch(() => undefined);
    const acts = await engine.activations(model, input, b.n, layers, { signal });
    for (const a of acts) byLayer.get(a.layer)!.set(a.mean, at * a.channels);
    labels.set(b.labels, at);
    if (logits) tally.add(await logits, b.labels, b.n);
    at += b.n;
  }
  if (at === 0) throw invalidArgument(`the ${split} split of '${dataset.summary.name}' gave no images`);
  return { byLayer, labels: labels.subarray(0, at), n: at, modelAccuracy: withModel ? tally.result().accuracy : undefined };
}

function accuracyOf(predicted: Int32Array, labels: Int32Array, classes: number): { accuracy: number; perClass: number[] } {
  const count = new Float64Array(classes);
  const correct = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) {
    count[labels[i]]++;
    if (predicted[i] === labels[i]) correct[labels[i]]++;
  }
  const all = count.reduce((a, b) => a + b, 0);
  return {
    accuracy: all > 0 ? correct.reduce((a, b) => a + b, 0) / all : 0,
    perClass: Array.from(count, (c, i) => (c > 0 ? correct[i] / c : 0)),
  };
}

export async function* layerProbes(opts: ProbesOptions): AsyncGenerator<ProbesEvent> {
  const { model, signal } = opts;
  const layers = opts.layers && opts.layers.length > 0 ? [...opts.layers] : model.convLayers.map((l) => l.index);
  for (const l of layers) {
    if (!Number.isInteger(l) || model.convLayers[l] === undefined) {
      throw invalidArgument(`layers: conv layer ${l} does not exist (the model has ${model.convLayers.length} conv layers)`);
    }
  }
  const epochs = opts.epochs && opts.epochs > 0 ? opts.epochs : DEFAULT_PROBE_EPOCHS;
  const l2 = opts.l2 ?? DEFAULT_PROBE_L2;
  if (!(Number.isFinite(l2) && l2 >= 0)) throw invalidArgument(`l2 must be a finite number ≥ 0, got ${l2}`);
  const classes = opts.dataset.summary.classNames.length;
  const total = 2 + layers.length;
  const train = await pooledFeatures(opts, 'train', layers, opts.trainLimit, false);
  yield { kind: 'features', split: 'train', images: train.n, done: 1, total };
  const test = await pooledFeatures(opts, 'test', layers, opts.testLimit, true);
  yield { kind: 'features', split: 'test', images: test.n, done: 2, total };
  let done = 2;
  for (const layer of layers) {
    throwIfAborted(signal);
    const d = model.convLayers[layer].channels;
    const head = await fitLogistic(train.byLayer.get(layer)!, train.labels, train.n, d, classes, { l2, iterations: epochs, signal });
    const trainAcc = accuracyOf(predictClass(head, train.byLayer.get(layer)!, train.n), train.labels, classes);
    const testAcc = accuracyOf(predictClass(head, test.byLayer.get(layer)!, test.n), test.labels, classes);
    done++;
    yield {
      kind: 'result',
      result: { layer, features: d, trainAccuracy: trainAcc.accuracy, testAccuracy: testAcc.accuracy, perClass: testAcc.perClass },
      modelAccuracy: test.modelAccuracy ?? 0,
      done,
      total,
    };
  }
}
