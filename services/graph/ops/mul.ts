/**
 * Elementwise product of two values (broadcasting as add). ONNX Mul/Div with a constant operand are read
 * by the importer's constant folding (as affine or mul of a constant); a product of two data values is
 * read there too (with Add), as one binary-data rule.
 */
import * as tf from '@tensorflow/tfjs-core';
import { tfjsOperands, unbroadcast } from './broadcasting';
import { defineOp } from './op';
import { broadcastShapes } from './shape-util';

export const mul = defineOp({
  op: 'mul',
  summary: 'x · y (numpy broadcasting of the second input)',
  shape: (_op, [a, b], cx) => broadcastShapes(a!, b!, cx.what),
  emitOnnx: (_op, cx, _n, inputs, o) => cx.b.node('Mul', inputs, {}, o),
  tfjs: (_op, ins, cx) => tf.mul(...tfjsOperands(ins, cx)),
  // product rule: d/dx_k = gy · x_{1−k}, summed over broadcast axes
  backward: (_op, cx) =>
    cx.node.inputs.forEach((_, k) => {
      const other = cx.x(1 - k);
      cx.give(k, unbroadcast(cx.b, cx.b.node('Mul', [cx.gy, other]), cx.inShape(k), cx.outShape()));
    }),
});
