/**
 * Runs the IR forward with tfjs ops, in layout (services/engines/tfjs/layout.ts). Values are freed as soon as
 * their last consumer has run, except those the caller asks to keep.
 */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import type { ConvOp, IrNode, PoolOp, Shape } from '../../graph/ir';
import { explicitPads, fromNchwTensor, layoutShape, tensorAxis, toNchw } from './layout';
import type { PreparedModel } from './prepared';

export interface ForwardOptions {
  /** Values to return (the caller disposes them). */
  keep: ReadonlySet<string>;
  /** [C] vectors multiplied onto these values (conv outputs z_j) right after they are computed. */
  masks?: ReadonlyMap<string, tf.Tensor>;
  /** Stop after the node producing this value. */
  until?: string;
}

export function runForward(pm: PreparedModel, x: tf.Tensor, opts: ForwardOptions): Map<string, tf.Tensor> {
  const g = pm.graph;
  const last = opts.until === undefined ? g.nodes.length - 1 : g.nodes.findIndex((n) => n.output === opts.until);
  if (last < 0) throw unimplemented(`value ${opts.until} is not produced by any node`);
  const uses = new Map<string, number>();
  for (let i = 0; i <= last; i++) for (const v of g.nodes[i]!.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
  const values = new Map<string, tf.Tensor>([[g.input.name, x]]);
  const out = new Map<string, tf.Tensor>();
  if (opts.keep.has(g.input.name)) out.set(g.input.name, tf.clone(x));
  const release = (v: string): void => {
    const left = (uses.get(v) ?? 0) - 1;
    uses.set(v, left);
    if (left <= 0 && v !== g.input.name) {
      values.get(v)?.dispose();
      values.delete(v);
    }
  };
  try {
    for (let i = 0; i <= last; i++) {
      const node = g.nodes[i]!;
      const ins = node.inputs.map((v) => values.get(v)!);
      const mask = opts.masks?.get(node.output);
      const y = tf.tidy(() => {
        const r = evalNode(pm, node, ins);
        return mask ? tf.mul(r, mask) : r;
      });
      if (opts.keep.has(node.output)) out.set(node.output, y);
      if ((uses.get(node.output) ?? 0) > 0) values.set(node.output, opts.keep.has(node.output) ? tf.clone(y) : y);
      else if (!opts.keep.has(node.output)) y.dispose();
      node.inputs.forEach(release);
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    for (const [v, t] of values) if (v !== g.input.name) t.dispose();
  }
  return out;
}

function evalNode(pm: PreparedModel, node: IrNode, ins: tf.Tensor[]): tf.Tensor {
  const op = node.op;
  const x = ins[0]!;
  const inShape = (i = 0): Shape => pm.shape(node.inputs[i]!);
  switch (op.op) {
    case 'conv':
      return conv(pm, node, op, x);
    case 'max_pool':
    case 'avg_pool':
      return pool(pm, node, op, x);
    case 'relu':
      return tf.relu(x);
    case 'leaky_relu':
      return tf.leakyRelu(x, op.alpha);
    case 'clip':
      return tf.clipByValue(x, op.min, op.max);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'tanh':
      return tf.tanh(x);
    case 'global_avg_pool':
      return tf.mean(x, [1, 2], true);
    case 'global_max_pool':
      return tf.max(x, [1, 2], true);
    case 'affine': {
      const s = inShape();
      return tf.add(tf.mul(x, pm.channelVector(node, op.scale, s)), pm.channelVector(node, op.shift, s));
    }
    case 'dense': {
      const y = tf.matMul(x, pm.denseWeight(node, op.weight));
      const b = pm.bias(node, op.bias);
      return b ? tf.add(y, b) : y;
    }
    case 'flatten':
    case 'reshape': {
      const out = pm.shape(node.output);
      return fromNchwTensor(tf.reshape(toNchw(x, inShape()), [x.shape[0]!, ...out]), out);
    }
    case 'add':
    case 'mul': {
      const out = pm.shape(node.output);
      const a = broadcastable(x, inShape(0), out.length);
      const b = broadcastable(ins[1]!, inShape(1), out.length);
      return op.op === 'add' ? tf.add(a, b) : tf.mul(a, b);
    }
    case 'concat':
      return tf.concat(ins, tensorAxis(inShape(), op.axis));
    case 'pad': {
      // Negative pads crop; positive ones pad with the value.
      const paddings = tensorPaddings(inShape(), op.pads);
      const begin = paddings.map(([b]) => Math.max(0, -b));
      const size = x.shape.map((d, t) => d - begin[t]! - Math.max(0, -paddings[t]![1]));
      const cropped = paddings.some(([b, e]) => b < 0 || e < 0) ? tf.slice(x, begin, size) : x;
      return tf.pad(cropped, paddings.map(([b, e]) => [Math.max(0, b), Math.max(0, e)] as [number, number]), op.value);
    }
    case 'slice':
      return slice(x, inShape(), op);
    case 'constant':
      return tf.clone(pm.constant(node, op.value));
    case 'identity':
      return tf.clone(x);
    default: {
      const never: never = op;
      throw unimplemented(`node ${node.name}: op ${(never as { op: string }).op} is not supported by the tfjs engine`);
    }
  }
}

function conv(pm: PreparedModel, node: IrNode, op: ConvOp, x: tf.Tensor): tf.Tensor {
  const info = pm.convInfo(node);
  const filters = pm.convFilters(node);
  const pads = explicitPads(op.pads);
  const x4 = x as tf.Tensor4D;
  let y: tf.Tensor4D;
  if (info.kind === 'standard') y = tf.conv2d(x4, filters[0]!, op.strides, pads, 'NHWC', op.dilations);
  else if (info.kind === 'depthwise') y = tf.depthwiseConv2d(x4, filters[0]!, op.strides, pads, 'NHWC', op.dilations);
  else {
    const parts = tf.split(x4, op.group, 3);
    y = tf.concat(parts.map((p, i) => tf.conv2d(p as tf.Tensor4D, filters[i]!, op.strides, pads, 'NHWC', op.dilations)), 3);
  }
  const b = pm.bias(node, op.bias);
  return b ? tf.add(y, b) : y;
}

/** Geometry of a pooling window op: padding (explicit plus the ceil-mode extra) and output size. */
interface PoolGeometry {
  top: number;
  left: number;
  bottom: number; // explicit bottom pad + ceil-mode extra
  right: number;
  extraBottom: number;
  extraRight: number;
  outH: number;
  outW: number;
}

function poolGeometry(op: PoolOp, inShape: Shape, outShape: Shape): PoolGeometry {
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

function padMap(x: tf.Tensor, geo: PoolGeometry, value: number): tf.Tensor {
  if (geo.top === 0 && geo.left === 0 && geo.bottom === 0 && geo.right === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [geo.top, geo.bottom],
    [geo.left, geo.right],
    [0, 0],
  ], value);
}

function pool(pm: PreparedModel, node: IrNode, op: PoolOp, x: tf.Tensor): tf.Tensor {
  const geo = poolGeometry(op, pm.shape(node.inputs[0]!), pm.shape(node.output));
  if (op.op === 'max_pool') return tf.maxPool(padMap(x, geo, -Infinity) as tf.Tensor4D, op.kernel, op.strides, 'valid');
  const sum = tf.mul(tf.avgPool(padMap(x, geo, 0) as tf.Tensor4D, op.kernel, op.strides, 'valid'), op.kernel[0] * op.kernel[1]);
  return tf.div(sum, avgPoolDivisor(pm, node, op, geo));
}

/** [1, outH, outW, 1]: how many cells each average-pool window divides by. */
function avgPoolDivisor(pm: PreparedModel, node: IrNode, op: PoolOp, geo: PoolGeometry): tf.Tensor {
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
function tensorPaddings(s: Shape, pads: number[]): Array<[number, number]> {
  const r = s.length;
  const out: Array<[number, number]> = Array.from({ length: r + 1 }, () => [0, 0] as [number, number]);
  for (let a = 0; a < r; a++) out[tensorAxis(s, a)] = [pads[a] ?? 0, pads[a + r] ?? 0];
  return out;
}

/** Resolved per-sample slice → tensor begin/end/strides (clamped to the value's extent). */
function sliceBounds(
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

function slice(x: tf.Tensor, s: Shape, op: { starts: number[]; ends: number[]; axes: number[]; steps: number[] }): tf.Tensor {
  const { begin, size, strides } = sliceBounds(s, op);
  begin[0] = 0;
  const end = begin.map((b, t) => (t === 0 ? x.shape[0]! : b + (size[t]! - 1) * strides[t]! + 1));
  return tf.stridedSlice(x, begin, end, strides);
}

/**
 * An operand of per-sample shape `s` reshaped so that tfjs broadcasting against a value of per-sample rank
 * `rank` follows the IR's (numpy, NCHW) rules: lower ranks are padded with leading 1s before the layout change.
 */
function broadcastable(t: tf.Tensor, s: Shape, rank: number): tf.Tensor {
  if (s.length === rank) return t;
  const padded = [...new Array<number>(rank - s.length).fill(1), ...s];
  return fromNchwTensor(tf.reshape(t, [t.shape[0]!, ...padded]), padded);
}
