/**
 * tfjs tensor helpers shared by the op modules' tfjs forms (services/graph/ops/*) and the tfjs engine:
 * pooling geometry, paddings, slices and broadcasting in the engine's layout (./layout.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import type { IrNode, PoolOp, Shape } from '../../graph/ir';
import { fromNchwTensor, layoutShape, tensorAxis } from './layout';
import type { PreparedModel } from './prepared';

/** Geometry of a pooling window op: padding (explicit plus the ceil-mode extra) and output size. */
export interface PoolGeometry {
  top: number;
  left: number;
  bottom: number; // explicit bottom pad + ceil-mode extra
  right: number;
  extraBottom: number;
  extraRight: number;
  outH: number;
  outW: number;
}

export function poolGeometry(op: PoolOp, inShape: Shape, outShape: Shape): PoolGeometry {
  const [, h, w] = inShape as [number, number, number];
  const [, outH, outW] = outShape as [number, number, number];
  const needH = (outH - 1) * op.strides[0] + op.kernel[0];
  const needW = (outW - 1) * op.strides[1] + op.kernel[1];
  const extraBottom = Math.max(0, needH - (h + op.pads[0] + op.pads[2]));
  const extraRight = Math.max(0, needW - (w + op.pads[1] + op.pads[3]));
  return {
    top: op.pads[0],
    left: op.pads[1],
    bottom: op.pads[2] + extraBottom,
    right: op.pads[3] + extraRight,
    extraBottom,
    extraRight,
    outH,
    outW,
  };
}

export function padMap(x: tf.Tensor, geo: PoolGeometry, value: number): tf.Tensor {
  if (geo.top === 0 && geo.left === 0 && geo.bottom === 0 && geo.right === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [geo.top, geo.bottom],
    [geo.left, geo.right],
    [0, 0],
  ], value);
}

/** [1, outH, outW, 1]: how many cells each average-pool window divides by. */
export function avgPoolDivisor(pm: PreparedModel, node: IrNode, op: PoolOp, geo: PoolGeometry): tf.Tensor {
  return pm.cachedTensor(`${node.name}#divisor`, () => {
    const [, h, w] = pm.shape(node.inputs[0]!) as [number, number, number];
    // Cells inside the image count; explicit padding counts when countIncludePad; the ceil-mode extra never.
    const pad = op.countIncludePad ? 1 : 0;
    const ones = tf.pad(tf.ones([1, h, w, 1]), [
      [0, 0],
      [op.pads[0], op.pads[2]],
      [op.pads[1], op.pads[3]],
      [0, 0],
    ], pad);
    const full = tf.pad(ones, [
      [0, 0],
      [0, geo.extraBottom],
      [0, geo.extraRight],
      [0, 0],
    ]);
    return tf.round(tf.mul(tf.avgPool(full as tf.Tensor4D, op.kernel, op.strides, 'valid'), op.kernel[0] * op.kernel[1]));
  });
}

/** Per-sample [begin..., end...] pads of a value of shape `s` as paddings over tensor axes (negative = crop). */
export function tensorPaddings(s: Shape, pads: number[]): Array<[number, number]> {
  const r = s.length;
  const out: Array<[number, number]> = Array.from({ length: r + 1 }, () => [0, 0] as [number, number]);
  for (let a = 0; a < r; a++) out[tensorAxis(s, a)] = [pads[a] ?? 0, pads[a + r] ?? 0];
  return out;
}

/** Resolved per-sample slice → tensor begin/end/strides (clamped to the value's extent). */
export function sliceBounds(
  s: Shape,
  op: { starts: number[]; ends: number[]; axes: number[]; steps: number[] },
): { begin: number[]; size: number[]; strides: number[] } {
  const lay = layoutShape(1, s);
  const begin = lay.map(() => 0);
  const end = [...lay];
  const strides = lay.map(() => 1);
  op.axes.forEach((a0, i) => {
    const a = a0 < 0 ? a0 + s.length : a0;
    const dim = s[a]!;
    const step = op.steps[i] ?? 1;
    if (step <= 0) throw unimplemented('slices with non-positive steps are not supported by the tfjs engine');
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const t = tensorAxis(s, a);
    begin[t] = clamp(op.starts[i]!);
    end[t] = Math.max(begin[t]!, clamp(op.ends[i]!));
    strides[t] = step;
  });
  const size = lay.map((_, t) => Math.ceil((end[t]! - begin[t]!) / strides[t]!));
  return { begin, size, strides };
}

/**
 * An operand of per-sample shape `s` reshaped so that tfjs broadcasting against a value of per-sample rank
 * `rank` follows the IR's (numpy, NCHW) rules: lower ranks are padded with leading 1s before the layout change.
 */
export function broadcastable(t: tf.Tensor, s: Shape, rank: number): tf.Tensor {
  if (s.length === rank) return t;
  const padded = [...new Array<number>(rank - s.length).fill(1), ...s];
  return fromNchwTensor(tf.reshape(t, [t.shape[0]!, ...padded]), padded);
}

export function stridedSliceOf(x: tf.Tensor, s: Shape, op: { starts: number[]; ends: number[]; axes: number[]; steps: number[] }): tf.Tensor {
  const { begin, size, strides } = sliceBounds(s, op);
  begin[0] = 0;
  const end = begin.map((b, t) => (t === 0 ? x.shape[0]! : b + (size[t]! - 1) * strides[t]! + 1));
  return tf.stridedSlice(x, begin, end, strides);
}
