/**
 * Per-channel affine y = x·scale[c] + shift[c] (an inference batch-norm that could not be folded into a
 * conv). Read by the importers' folding machinery (ONNX BatchNormalization and per-channel constant
 * arithmetic, Keras BatchNormalization), not by a reader of its own.
 */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument } from '../../errors';
import { defineOp } from './op';

export const affine = defineOp({
  op: 'affine',
  summary: 'x·scale[c] + shift[c] per channel (axis 0)',
  shape: (op, [x], cx) => {
    const s = cx.weight(op.scale);
    if (s.data.length !== x![0]) throw invalidArgument(`${cx.what}: ${s.data.length} scales for ${x![0]} channels`);
    return [...x!];
  },
  weights: (op) => [op.scale, op.shift],
  emitOnnx: (op, cx, n, [x], o) => {
    const rank = cx.shape(n.inputs[0]!).length;
    const scaled = cx.b.node('Mul', [x!, cx.channelInit(op.scale, rank)]);
    return cx.b.node('Add', [scaled, cx.channelInit(op.shift, rank)], {}, o);
  },
  tfjs: (op, [x], { pm, node, inShape }) => {
    const s = inShape();
    return tf.add(tf.mul(x!, pm.channelVector(node, op.scale, s)), pm.channelVector(node, op.shift, s));
  },
  backward: (op, cx) => cx.give(0, cx.b.node('Mul', [cx.gy, cx.channelInit(op.scale, cx.inShape().length)])),
});
