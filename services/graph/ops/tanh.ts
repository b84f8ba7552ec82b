/** Hyperbolic tangent. */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp, gatedBackward, sameShape } from './op';

export const tanh = defineOp({
  op: 'tanh',
  summary: 'tanh(x)',
  shape: sameShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('Tanh', [x!], {}, o),
  tfjs: (_op, [x]) => tf.tanh(x!),
  // derivative 1 − y²
  backward: (_op, cx) => {
    const b = cx.b;
    const y = cx.y();
    gatedBackward(cx, b.node('Sub', [b.floats('one', [1], []), b.node('Mul', [y, y])]));
  },
  onnx: { Tanh: (cx) => cx.bindOut(cx.emit({ op: 'tanh' }, [cx.dataIn(0)])) },
  kerasActivations: { tanh: () => ({ op: 'tanh' }) },
  traits: { activation: true, zeroPreserving: () => true },
});
