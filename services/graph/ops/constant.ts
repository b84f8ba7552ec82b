/** A weight used as a value, broadcast over the batch (made by the ONNX importer for constant operands). */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp } from './op';

export const constant = defineOp({
  op: 'constant',
  summary: 'a weight as a per-sample value',
  shape: (op, _inputs, cx) => [...cx.weight(op.value).shape],
  weights: (op) => [op.value],
  emitOnnx: (op, cx, _n, _inputs, o) => {
    const w = cx.weightOf(op.value);
    const value = cx.init(op.value, [1, ...w.shape]);
    const shape = cx.b.node('Concat', [cx.batchDim(), cx.b.ints('shape', w.shape)], { axis: { i: 0 } });
    return cx.b.node('Expand', [value, shape], {}, o);
  },
  tfjs: (op, _ins, { pm, node }) => tf.clone(pm.constant(node, op.value)),
  // no inputs: nothing to give
  backward: () => undefined,
});
