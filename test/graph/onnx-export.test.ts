import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { importOnnx } from '../../services/graph/onnx-import';
import { exportForward } from '../../services/graph/onnx-export';
import { activationValue, convLayers } from '../../services/graph/layers';
import { decodeModel, encodeModel } from '../../services/graph/onnx-codec';
import type { IrGraph } from '../../services/graph/ir';
import { needShared, sharedPath } from '../support/shared';
import { cifarImages, maxAbs, maxAbsDiff, mnistImages, randomArray, run, session } from './support';
import { opModels } from './op-models';

const SHARED_MODELS: { name: string; images: (n: number) => { x: Float32Array }; c: number }[] = [
  { name: 'resnet20_cifar10', images: (n) => cifarImages('resnet20_cifar10', n), c: 3 },
  { name: 'vgg11_cifar10', images: (n) => cifarImages('vgg11_cifar10', n), c: 3 },
  { name: 'vgg11_mnist', images: (n) => mnistImages(n), c: 1 },
];

function softmaxRows(x: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    const m = Math.max(...row);
    let s = 0;
    for (let k = 0; k < cols; k++) s += Math.exp(row[k] - m);
    for (let k = 0; k < cols; k++) out[r * cols + k] = Math.exp(row[k] - m) / s;
  }
  return out;
}

/** The original model with an extra graph output (to read an intermediate value straight from ORT). */
function withExtraOutput(bytes: Uint8Array, value: string): Uint8Array {
  const m = decodeModel(bytes);
  m.graph?.output.push({ name: value, type: undefined });
  return encodeModel(m);
}

/** The graph with conv channels zeroed in its weights (the pruning definition), no masks. */
function zeroChannels(g: IrGraph, layer: number, channels: number[]): IrGraph {
  const node = g.nodes.find((n) => n.name === convLayers(g)[layer].node);
  if (!node || node.op.op !== 'conv') throw new Error('no conv');
  const weights = new Map(g.weights);
  const w = weights.get(node.op.weight);
  if (!w) throw new Error('no weight');
  const wd = Float32Array.from(w.data);
  const per = wd.length / w.shape[0];
  for (const c of channels) wd.fill(0, c * per, (c + 1) * per);
  weights.set(node.op.weight, { shape: w.shape, data: wd });
  if (node.op.bias) {
    const bd = Float32Array.from(weights.get(node.op.bias)?.data ?? []);
    for (const c of channels) bd[c] = 0;
    weights.set(node.op.bias, { shape: [bd.length], data: bd });
  }
  return { ...g, weights };
}

describe('graph: ONNX forward export', function () {
  this.timeout(120000);

  for (const m of SHARED_MODELS) {
    it(`${m.name}: exported logits equal the original model's in onnxruntime on real images`, async function () {
      needShared(this, `models/${m.name}.onnx`, 'datasets/cifar-10-batches-bin/test_batch.bin');
      const bytes = fs.readFileSync(sharedPath(`models/${m.name}.onnx`));
      const n = 8;
      const { x } = m.images(n);
      const dims = [n, m.c, 32, 32];
      const want = await run(bytes, { input: { data: x, dims } });
      const got = await run(exportForward(importOnnx(bytes)), { input: { data: x, dims } });
      assert.ok(maxAbs(want.logits) > 1, 'logits should not be trivially small');
      assert.ok(maxAbsDiff(got.logits, want.logits) <= 1e-5 * Math.max(1, maxAbs(want.logits)), `max diff ${maxAbsDiff(got.logits, want.logits)}`);
    });
  }

  it('resnet20: activation statistics equal a plain loop over the original model\'s intermediate values', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const bytes = fs.readFileSync(sharedPath('models/resnet20_cifar10.onnx'));
    const g = importOnnx(bytes);
    const layers = convLayers(g);
    const picks = [1, 8]; // a relu layer and a residual conv without an activation
    assert.deepEqual(
      picks.map((j) => layers[j].activation),
      ['relu', ''],
    );
    const n = 3;
    const { x } = cifarImages('resnet20_cifar10', n, 100);
    const got = await run(exportForward(g, { activationStats: picks }), { input: { data: x, dims: [n, 3, 32, 32] } });
    for (const j of picks) {
      const value = activationValue(g, layers[j]);
      const ref = await run(withExtraOutput(bytes, value), { input: { data: x, dims: [n, 3, 32, 32] } });
      const a = ref[value];
      const [c, h, w] = layers[j].shape;
      const mean = new Float32Array(n * c);
      const zero = new Float32Array(n * c);
      for (let i = 0; i < n; i++)
        for (let k = 0; k < c; k++) {
          let s = 0;
          let z = 0;
          for (let p = 0; p < h * w; p++) {
            const v = a[(i * c + k) * h * w + p];
            s += v;
            if (v <= 0) z++;
          }
          mean[i * c + k] = s / (h * w);
          zero[i * c + k] = z / (h * w);
        }
      assert.ok(maxAbsDiff(got[`act_mean_${j}`], mean) < 1e-5, `act_mean_${j}`);
      assert.ok(maxAbsDiff(got[`act_zero_${j}`], zero) < 1e-6, `act_zero_${j}`);
      assert.ok(zero.some((v) => v > 0 && v < 1), 'the zero fractions should be informative');
    }
  });

  it('vgg11_cifar10: a channel mask equals zeroing those channels\' weights and bias', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
    const pruned = [0, 5, 17, 63];
    const n = 4;
    const { x } = cifarImages('vgg11_cifar10', n, 200);
    const mask = new Float32Array(128).fill(1);
    for (const c of pruned) mask[c] = 0;
    const s = await session(exportForward(g, { maskLayers: [1], activationStats: [1] }));
    const masked = await run(s, { input: { data: x, dims: [n, 3, 32, 32] }, mask_1: { data: mask, dims: [128] } });
    const kept = await run(s, { input: { data: x, dims: [n, 3, 32, 32] }, mask_1: { data: mask.fill(1), dims: [128] } });
    const ref = await run(exportForward(zeroChannels(g, 1, pruned)), { input: { data: x, dims: [n, 3, 32, 32] } });
    assert.ok(maxAbsDiff(masked.logits, ref.logits) < 1e-5);
    assert.ok(maxAbsDiff(masked.logits, kept.logits) > 1e-3, 'pruning four channels should change the logits');
    for (let i = 0; i < n; i++) for (const c of pruned) assert.equal(masked.act_zero_1[i * 128 + c], 1);
  });

  describe('op coverage: each small model gives the same output through import + export as in onnxruntime directly', () => {
    for (const m of opModels()) {
      it(m.name, async () => {
        const g = importOnnx(m.bytes);
        const n = m.batch ?? 2;
        const x = randomArray(n * m.input[0] * m.input[1] * m.input[2], 7);
        const dims = [n, ...m.input];
        const want = (await run(m.bytes, { x: { data: x, dims } })).y;
        let got = (await run(exportForward(g), { input: { data: x, dims } })).logits;
        if (m.softmax) got = softmaxRows(got, got.length / n);
        assert.ok(maxAbs(want) > 1e-3, 'the reference output should not be all zeros');
        const tol = 1e-5 * Math.max(1, maxAbs(want));
        assert.ok(maxAbsDiff(got, want) <= tol, `max diff ${maxAbsDiff(got, want)}`);
      });
    }

    it('a batch-norm after a conv is folded (batchNormFolded) and one after a shared conv output is not', () => {
      const m = opModels().find((o) => o.name.startsWith('batch-norm'));
      assert.ok(m);
      const g = importOnnx(m.bytes);
      const layers = convLayers(g);
      assert.deepEqual(
        layers.map((l) => l.batchNormFolded),
        [true, false],
      );
      assert.equal(g.nodes.filter((n) => n.op.op === 'affine').length, 2);
    });
  });
});
