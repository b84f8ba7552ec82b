/**
 * Gradients with respect to a layer's output (Engine.attribute with `wrt`, what Grad-CAM needs):
 * d(logit_c)/d(A_k) on a small model against central finite differences of the network's tail run by
 * onnxruntime from A_k, on both engines; d/d(z_k) equals d/d(A_k) times the ReLU mask; both engines agree on
 * a shared model; bad layer points are invalid-argument.
 */
import { strict as assert } from 'node:assert';
import { IntrospectError } from '../../services/errors';
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import { importOnnx } from '../../services/graph/onnx-import';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { maxAbs, maxAbsDiff, randomArray, run } from '../graph/support';
import { needShared } from '../support/shared';
import { cifarImages, engineModel, rowRelativeError, sharedModel } from './support';

const W1 = randomArray(4 * 3 * 9, 1, 0.5);
const B1 = randomArray(4, 2, 0.1);
const W2 = randomArray(5 * 4 * 9, 3, 0.4);
const B2 = randomArray(5, 4, 0.1);
const WD = randomArray(3 * 5 * 16, 5, 0.3);

/** relu(conv1) -> maxpool 2 -> relu(conv2) -> flatten -> dense 3, from `x` (the whole model) or from A_0 (its tail). */
function onnx(from: 'x' | 'a0'): Uint8Array {
  const b = new OnnxBuilder(from);
  let v: string;
  if (from === 'x') {
    const x = b.input('x', ['N', 3, 8, 8]);
    v = b.node('Relu', [b.node('Conv', [x, b.floatInit('w1', [4, 3, 3, 3], W1), b.floatInit('b1', [4], B1)], { pads: { ints: [1, 1, 1, 1] } })]);
  } else v = b.input('a0', ['N', 4, 8, 8]);
  v = b.node('MaxPool', [v], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  v = b.node('Relu', [b.node('Conv', [v, b.floatInit('w2', [5, 4, 3, 3], W2), b.floatInit('b2', [5], B2)], { pads: { ints: [1, 1, 1, 1] } })]);
  b.node('Gemm', [b.node('Flatten', [v]), b.floatInit('wd', [3, 80], WD)], { transB: { i: 1 } }, 'y');
  b.output('y');
  return b.encode();
}

/** A_0 = relu(conv1(x)) computed directly (a plain loop), [4, 8, 8]. */
function firstActivation(x: Float32Array): Float32Array {
  const a = new Float32Array(4 * 64);
  for (let o = 0; o < 4; o++)
    for (let y = 0; y < 8; y++)
      for (let xx = 0; xx < 8; xx++) {
        let s = B1[o]!;
        for (let i = 0; i < 3; i++)
          for (let p = 0; p < 3; p++)
            for (let q = 0; q < 3; q++) {
              const yy = y + p - 1;
              const xq = xx + q - 1;
              if (yy >= 0 && yy < 8 && xq >= 0 && xq < 8) s += W1[((o * 3 + i) * 3 + p) * 3 + q]! * x[(i * 8 + yy) * 8 + xq]!;
            }
        a[(o * 8 + y) * 8 + xx] = Math.max(s, 0);
      }
  return a;
}

describe('engines: gradient with respect to a layer output (wrt)', function () {
  this.timeout(300000);
  const ort = new OnnxRuntimeEngine({ workers: 1, intraOpThreads: 1, log: () => undefined });
  const tfjs = new TfjsEngine({ log: () => undefined });
  const model = engineModel(importOnnx(onnx('x')), 'wrt-small');
  const x = randomArray(3 * 64, 11);
  const classes = [0, 2];

  after(async () => {
    await Promise.all([ort.close(), tfjs.close()]);
  });

  for (const [name, engine] of [
    ['onnxruntime', ort],
    ['tfjs', tfjs],
  ] as const) {
    it(`${name}: d(logit)/d(A_0) agrees with central differences of the tail from A_0`, async () => {
      const grad = await engine.attribute(model, x, { kind: 'logit', classes }, 'gradient', { wrt: { layer: 0 } });
      assert.equal(grad.length, classes.length * 4 * 64);
      const a0 = firstActivation(x);
      // perturb every positive element of A_0 (the tail is piecewise linear; a kink crossing is rare at this eps)
      const eps = 1e-3;
      const picks = Array.from(a0.keys()).filter((i) => a0[i]! > 0.01);
      const batch = new Float32Array(2 * picks.length * a0.length);
      picks.forEach((p, i) => {
        batch.set(a0, 2 * i * a0.length);
        batch.set(a0, (2 * i + 1) * a0.length);
        batch[2 * i * a0.length + p] += eps;
        batch[(2 * i + 1) * a0.length + p] -= eps;
      });
      const y = (await run(onnx('a0'), { a0: { data: batch, dims: [2 * picks.length, 4, 8, 8] } })).y;
      let good = 0;
      let total = 0;
      const scale = maxAbs(grad);
      assert.ok(scale > 0);
      picks.forEach((p, i) => {
        classes.forEach((c, r) => {
          const fd = (y[2 * i * 3 + c]! - y[(2 * i + 1) * 3 + c]!) / (2 * eps);
          total++;
          if (Math.abs(fd - grad[r * 256 + p]!) <= 1e-3 * scale + 1e-5) good++;
        });
      });
      assert.ok(good / total >= 0.97, `${good} of ${total} derivatives agree`);
    });

    it(`${name}: d/d(z_0) is d/d(A_0) times the ReLU mask (gradient rule); conv targets stop there too`, async () => {
      const dA = await engine.attribute(model, x, { kind: 'logit', classes }, 'gradient', { wrt: { layer: 0, at: 'activation' } });
      const dZ = await engine.attribute(model, x, { kind: 'logit', classes }, 'gradient', { wrt: { layer: 0, at: 'conv' } });
      const a0 = firstActivation(x);
      const want = dA.map((v, i) => (a0[i % 256]! > 0 ? v : 0));
      assert.ok(maxAbsDiff(dZ, want) <= 1e-6 * Math.max(1, maxAbs(want)));
      // a conv target at layer 1 with respect to layer 0's activation: [2 rows, 4, 8, 8]
      const t = await engine.attribute(model, x, { kind: 'conv', layer: 1, channels: [1, 4], objective: 'abs_sum' }, 'guided', { wrt: { layer: 0 } });
      assert.equal(t.length, 2 * 256);
      assert.ok(maxAbs(t) > 0);
    });

    it(`${name}: a layer after the target, or one that does not exist, is invalid-argument`, async () => {
      for (const wrt of [{ layer: 1 }, { layer: 7 }, { layer: 0, at: 'pool' as 'conv' }]) {
        await assert.rejects(
          engine.attribute(model, x, { kind: 'conv', layer: 0, channels: [0], objective: 'abs_sum' }, 'gradient', { wrt }),
          (e: unknown) => e instanceof IntrospectError && e.kind === 'invalid-argument',
        );
      }
    });
  }

  it('resnet20_cifar10: both engines agree on d(logit)/d(A_k) of the last conv layer (Grad-CAM input)', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model: m } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(3, 1, true);
    const last = m.convLayers.length - 1;
    const per = m.convLayers[last]!.shape.reduce((a, b) => a * b, 1);
    const a = await ort.attribute(m, data, { kind: 'logit', classes: [3, 5] }, 'gradient', { wrt: { layer: last } });
    const b = await tfjs.attribute(m, data, { kind: 'logit', classes: [3, 5] }, 'gradient', { wrt: { layer: last } });
    assert.equal(a.length, 2 * per);
    assert.ok(maxAbs(a) > 0);
    assert.ok(rowRelativeError(a, b, per) < 1e-4);
  });
});
