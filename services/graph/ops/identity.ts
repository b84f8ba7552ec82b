/** Identity (kept where an importer needs a node; ONNX Identity/Dropout are removed as aliases by the importer). */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp, sameShape } from './op';

export const identity = defineOp({
  op: 'identity',
  summary: 'x',
  shape: sameShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('Identity', [x!], {}, o),
  tfjs: (_op, [x]) => tf.clone(x!),
  backward: (_op, cx) => cx.give(0, cx.gy),
  traits: { zeroPreserving: () => true },
});
