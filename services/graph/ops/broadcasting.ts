/** Broadcasting shared by the binary elementwise ops (add, mul): tfjs operands and the backward's reduction. */
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '../ir';
import type { OnnxBuilder } from '../onnx-builder';
import { broadcastable } from '../../engines/tfjs/tensor-ops';
import type { TfjsContext } from './op';

/** The two operands of a binary op as tfjs tensors that broadcast like the IR (numpy, NCHW) operands. */
export function tfjsOperands(ins: tf.Tensor[], cx: TfjsContext): [tf.Tensor, tf.Tensor] {
  const r = cx.outShape().length;
  return [broadcastable(ins[0]!, cx.inShape(0), r), broadcastable(ins[1]!, cx.inShape(1), r)];
}

/** Sums a [B, ...outShape] gradient over the axes an input of shape `inShape` was broadcast along. */
export function unbroadcast(b: OnnxBuilder, gy: string, inShape: Shape, outShape: Shape): string {
  const axes: number[] = [];
  const r = outShape.length;
  const padded = [...new Array<number>(r - inShape.length).fill(1), ...inShape];
  for (let i = 0; i < r; i++) if (padded[i] === 1 && outShape[i] !== 1) axes.push(i + 1);
  let out = gy;
  if (axes.length) out = b.node('ReduceSum', [gy, b.ints('axes', axes)], { keepdims: { i: 1 } });
  if (inShape.length !== r) out = b.node('Reshape', [out, b.ints('shape', [-1, ...inShape])]);
  return out;
}
