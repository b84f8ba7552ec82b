/** Logistic sigmoid 1 / (1 + e^−x). */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp, gatedBackward, sameShape } from './op';

export const sigmoid = defineOp({
  op: 'sigmoid',
  summary: '1 / (1 + exp(−x))',
  shape: sameShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('Sigmoid', [x!], {}, o),
  tfjs: (_op, [x]) => tf.sigmoid(x!),
  // derivative y·(1 − y)
  backward: (_op, cx) => {
    const b = cx.b;
    const y = cx.y();
    gatedBackward(cx, b.node('Mul', [y, b.node('Sub', [b.floats('one', [1], []), y])]));
  },
  onnx: { Sigmoid: (cx) => cx.bindOut(cx.emit({ op: 'sigmoid' }, [cx.dataIn(0)])) },
  kerasActivations: { sigmoid: () => ({ op: 'sigmoid' }) },
  traits: { activation: true },
});
