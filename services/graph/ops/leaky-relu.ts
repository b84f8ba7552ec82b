/** Leaky ReLU: x for x > 0, alpha·x otherwise. */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp, gatedBackward, sameShape } from './op';

export const leakyRelu = defineOp({
  op: 'leaky_relu',
  summary: 'x > 0 ? x : alpha·x',
  shape: sameShape,
  emitOnnx: (op, cx, _n, [x], o) => cx.b.node('LeakyRelu', [x!], { alpha: { f: op.alpha } }, o),
  tfjs: (op, [x]) => tf.leakyRelu(x!, op.alpha),
  // derivative [x > 0]·(1 − alpha) + alpha
  backward: (op, cx) => {
    const b = cx.b;
    const d = b.node('Add', [b.node('Mul', [cx.positive(cx.x()), b.floats('c', [1 - op.alpha], [])]), b.floats('c', [op.alpha], [])]);
    gatedBackward(cx, d);
  },
  onnx: {
    LeakyRelu: (cx) => cx.bindOut(cx.emit({ op: 'leaky_relu', alpha: cx.attrs.float('alpha', 0.01) }, [cx.dataIn(0)])),
  },
  kerasLayers: {
    LeakyReLU: (cx) => {
      const x = cx.one();
      const alpha = Number(cx.config.alpha ?? cx.config.negative_slope ?? 0.3);
      return { name: cx.addNode(cx.name, { op: 'leaky_relu', alpha }, [x.name], x.shape), shape: x.shape, perm: x.perm };
    },
  },
  traits: { activation: true, zeroPreserving: () => true },
});
