/**
 * A hand-written batched backward pass over the IR (SPEC §2): with one forward pass of one image fixed, the
 * input gradient is a linear map of the seed, so B seeds (one neuron per batch row) run as one batch.
 *
 * Rules: ReLU under 'gradient' (true derivative), 'guided' (forward input > 0 and incoming gradient > 0) or
 * 'deconv' (incoming gradient > 0, forward sign ignored); other activations apply their true derivative, and
 * under guided and deconv also drop negative incoming gradients (as services/graph/backward.ts does);
 * max-pooling routes to the (first) arg-max; batch-norm
 * scales; convolution backward is a stride-1 conv of the (stride-dilated) gradient with the flipped kernel, or
 * tfjs' conv2dTranspose.
 */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import type { ConvOp, IrNode, PoolOp, Shape } from '../../graph/ir';
import type { ReluRule } from '../engine';
import { avgPoolDivisor, broadcastable, padMap, poolGeometry, runForward, sliceBounds, tensorPaddings, type PoolGeometry } from './forward';
import { explicitPads, fromNchwTensor, layoutShape, tensorAxis, toNchw } from './layout';
import type { PreparedModel } from './prepared';

export type ConvBackwardMode = 'flipped' | 'transpose';

export interface BackwardPass {
  /** Index of the node producing the target value. */
  last: number;
  rule: ReluRule;
  convMode: ConvBackwardMode;
  /** Values that depend on the input (only these receive gradients). */
  live: Set<string>;
  /** Per node: forward-derived batch-1 tensors its backward needs. */
  aux: Map<string, tf.Tensor[]>;
  /** The target value from the forward pass (batch 1), for building seeds. */
  target: tf.Tensor;
}

/** Runs the forward pass of one image up to `targetValue` and keeps what the backward will need. */
export function prepareBackward(
  pm: PreparedModel,
  x: tf.Tensor,
  targetValue: string,
  rule: ReluRule,
  convMode: ConvBackwardMode,
): BackwardPass {
  const g = pm.graph;
  const last = g.nodes.findIndex((n) => n.output === targetValue);
  if (last < 0) throw unimplemented(`value ${targetValue} is not produced by any node`);
  const live = new Set<string>([g.input.name]);
  const keep = new Set<string>([g.input.name]);
  for (let i = 0; i <= last; i++) {
    const n = g.nodes[i]!;
    if (n.inputs.some((v) => live.has(v))) live.add(n.output);
    n.inputs.forEach((v) => keep.add(v));
    keep.add(n.output);
  }
  const values = runForward(pm, x, { keep, until: targetValue });
  const aux = new Map<string, tf.Tensor[]>();
  try {
    for (let i = 0; i <= last; i++) {
      const n = g.nodes[i]!;
      if (!live.has(n.output)) continue;
      const made = tf.tidy(() => auxFor(pm, n, values, rule));
      if (made.length) aux.set(n.name, made);
    }
    const target = values.get(targetValue)!;
    values.delete(targetValue);
    return { last, rule, convMode, live, aux, target };
  } catch (e) {
    for (const ts of aux.values()) ts.forEach((t) => t.dispose());
    throw e;
  } finally {
    for (const t of values.values()) t.dispose();
  }
}

export function disposeBackward(pass: BackwardPass): void {
  for (const ts of pass.aux.values()) ts.forEach((t) => t.dispose());
  pass.aux.clear();
  pass.target.dispose();
}

/** d(seed · target)/d(input) for every batch row of `seed` (layout of the target value): [B, layout of input]. */
export function runBackward(pm: PreparedModel, pass: BackwardPass, seed: tf.Tensor): tf.Tensor {
  const g = pm.graph;
  const b = seed.shape[0]!;
  const grads = new Map<string, tf.Tensor>([[g.nodes[pass.last]!.output, tf.clone(seed)]]);
  try {
    for (let i = pass.last; i >= 0; i--) {
      const node = g.nodes[i]!;
      const gy = grads.get(node.output);
      if (!gy) continue;
      grads.delete(node.output);
      const gx = tf.tidy(() => backwardNode(pm, pass, node, gy));
      gy.dispose();
      node.inputs.forEach((v, k) => {
        const t = gx[k];
        if (!t) return;
        if (!pass.live.has(v)) {
          t.dispose();
          return;
        }
        const prev = grads.get(v);
        if (prev) {
          grads.set(v, tf.add(prev, t));
          prev.dispose();
          t.dispose();
        } else grads.set(v, t);
      });
    }
    const gi = grads.get(g.input.name);
    grads.delete(g.input.name);
    return gi ?? tf.zeros(layoutShape(b, g.input.shape));
  } finally {
    for (const t of grads.values()) t.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------

function auxFor(pm: PreparedModel, n: IrNode, values: Map<string, tf.Tensor>, rule: ReluRule): tf.Tensor[] {
  const x = values.get(n.inputs[0]!)!;
  const op = n.op;
  switch (op.op) {
    case 'relu':
      return rule === 'deconv' ? [] : [tf.cast(tf.greater(x, 0), 'float32')];
    case 'leaky_relu': {
      const pos = tf.cast(tf.greater(x, 0), 'float32');
      return [tf.add(pos, tf.mul(tf.sub(1, pos), op.alpha))];
    }
    case 'clip':
      return [tf.cast(tf.logicalAnd(tf.greater(x, op.min), tf.less(x, op.max)), 'float32')];
    case 'sigmoid': {
      const y = values.get(n.output)!;
      return [tf.mul(y, tf.sub(1, y))];
    }
    case 'tanh': {
      const y = values.get(n.output)!;
      return [tf.sub(1, tf.square(y))];
    }
    case 'max_pool': {
      const routing = maxPoolRouting(pm, n, op, x); // [1, Ho, Wo, C, K]
      if (!tiles(op)) return [routing];
      // Non-overlapping windows: the one-hot laid out over the covered input region, [1, Ho·kH, Wo·kW, C].
      const [, ho, wo, c] = routing.shape as number[];
      const [kh, kw] = op.kernel;
      const six = tf.reshape(routing, [1, ho!, wo!, c!, kh, kw]);
      return [tf.reshape(tf.transpose(six, [0, 1, 4, 2, 5, 3]), [1, ho! * kh, wo! * kw, c!])];
    }
    case 'global_max_pool': {
      const [c, h, w] = pm.shape(n.inputs[0]!) as [number, number, number];
      const arg = tf.argMax(tf.reshape(x, [1, h * w, c]), 1); // [1, C], first maximum
      const onehot = tf.cast(tf.oneHot(arg, h * w), 'float32'); // [1, C, H*W]
      return [tf.reshape(tf.transpose(onehot, [0, 2, 1]), [1, h, w, c])];
    }
    case 'mul':
      return n.inputs.map((v) => tf.clone(values.get(v)!));
    default:
      return [];
  }
}

/** [1, outH, outW, C, kH·kW]: one-hot of the first maximum of every window, in row-major window order. */
function maxPoolRouting(pm: PreparedModel, n: IrNode, op: PoolOp, x: tf.Tensor): tf.Tensor {
  const geo = poolGeometry(op, pm.shape(n.inputs[0]!), pm.shape(n.output));
  const xp = padMap(x, geo, -Infinity);
  const c = x.shape[3]!;
  const windows: tf.Tensor[] = [];
  for (let a = 0; a < op.kernel[0]; a++) {
    for (let b = 0; b < op.kernel[1]; b++) {
      const end = [1, a + (geo.outH - 1) * op.strides[0] + 1, b + (geo.outW - 1) * op.strides[1] + 1, c];
      windows.push(tf.stridedSlice(xp, [0, a, b, 0], end, [1, op.strides[0], op.strides[1], 1]));
    }
  }
  const k = windows.length;
  const arg = tf.argMax(tf.stack(windows, 4), 4);
  return tf.cast(tf.oneHot(arg, k), 'float32');
}

function backwardNode(pm: PreparedModel, pass: BackwardPass, node: IrNode, gy: tf.Tensor): Array<tf.Tensor | undefined> {
  const op = node.op;
  const aux = pass.aux.get(node.name) ?? [];
  const inShape = (i = 0): Shape => pm.shape(node.inputs[i]!);
  const outShape = pm.shape(node.output);
  const b = gy.shape[0]!;
  switch (op.op) {
    case 'relu':
      if (pass.rule === 'gradient') return [tf.mul(gy, aux[0]!)];
      if (pass.rule === 'guided') return [tf.mul(tf.relu(gy), aux[0]!)];
      return [tf.relu(gy)];
    case 'leaky_relu':
    case 'clip':
    case 'sigmoid':
    case 'tanh':
      return [tf.mul(pass.rule === 'gradient' ? gy : tf.relu(gy), aux[0]!)];
    case 'conv':
      return [convBackward(pm, node, op, gy, inShape(), pass.convMode)];
    case 'max_pool': {
      const geo = poolGeometry(op, inShape(), outShape);
      if (tiles(op)) {
        // Each input cell lies in at most one window: repeat every output gradient over its window, keep the arg-max.
        const spread = tf.image.resizeNearestNeighbor(gy as tf.Tensor4D, [geo.outH * op.kernel[0], geo.outW * op.kernel[1]]);
        return [cropToInput(tf.mul(spread, aux[0]!), geo, inShape())];
      }
      const routed = tf.mul(tf.expandDims(gy, 4), aux[0]!); // [B, Ho, Wo, C, K]
      const k = op.kernel[0] * op.kernel[1];
      const parts = tf.unstack(routed, 4);
      if (parts.length !== k) throw unimplemented(`max_pool ${node.name}: routing mismatch`);
      return [scatterWindows(parts, op, geo, inShape())];
    }
    case 'avg_pool': {
      const geo = poolGeometry(op, inShape(), outShape);
      const share = tf.div(gy, avgPoolDivisor(pm, node, op, geo));
      if (tiles(op)) {
        const spread = tf.image.resizeNearestNeighbor(share as tf.Tensor4D, [geo.outH * op.kernel[0], geo.outW * op.kernel[1]]);
        return [cropToInput(spread, geo, inShape())];
      }
      const parts = new Array<tf.Tensor>(op.kernel[0] * op.kernel[1]).fill(share);
      return [scatterWindows(parts, op, geo, inShape())];
    }
    case 'global_avg_pool': {
      const [c, h, w] = inShape() as [number, number, number];
      return [tf.broadcastTo(tf.div(gy, h * w), [b, h, w, c])];
    }
    case 'global_max_pool':
      return [tf.mul(gy, aux[0]!)];
    case 'affine':
      return [tf.mul(gy, pm.channelVector(node, op.scale, inShape()))];
    case 'dense':
      return [tf.matMul(gy, pm.denseWeight(node, op.weight), false, true)];
    case 'flatten':
    case 'reshape': {
      const s = inShape();
      return [fromNchwTensor(tf.reshape(toNchw(gy, outShape), [b, ...s]), s)];
    }
    case 'add':
      return node.inputs.map((v, i) => (pass.live.has(v) ? unbroadcast(gy, inShape(i), outShape) : undefined));
    case 'mul':
      return node.inputs.map((v, i) => {
        if (!pass.live.has(v)) return undefined;
        const other = broadcastable(aux[1 - i]!, inShape(1 - i), outShape.length);
        return unbroadcast(tf.mul(gy, other), inShape(i), outShape);
      });
    case 'concat': {
      const axis = tensorAxis(inShape(), op.axis);
      return tf.split(gy, node.inputs.map((_, i) => inShape(i)[op.axis]!), axis);
    }
    case 'pad': {
      // Undo the padding (crop), then restore cropped cells (negative pads) as zeros.
      let r = gy;
      tensorPaddings(inShape(), op.pads).forEach(([before, after], t) => {
        if (t > 0) r = padOrCrop(r, t, -before, -after);
      });
      return [r];
    }
    case 'slice':
      return [sliceBackward(gy, inShape(), op)];
    case 'identity':
      return [tf.clone(gy)]; // a new handle: the caller disposes gy
    case 'constant':
      return [];
    default: {
      const never = op as never; // ops added with the op registry (services/graph/ops) have no rule here: refused below
      throw unimplemented(`node ${node.name}: no backward for op ${(never as { op: string }).op} in the tfjs engine`);
    }
  }
}

/** Inserts `s - 1` zeros after every element along tensor axis `axis` (length L → L·s). */
function dilate(t: tf.Tensor, axis: number, s: number): tf.Tensor {
  if (s === 1) return t;
  const e = tf.expandDims(t, axis + 1);
  const pads = e.shape.map((_, i) => (i === axis + 1 ? [0, s - 1] : [0, 0]) as [number, number]);
  const shape = [...t.shape];
  shape[axis] = shape[axis]! * s;
  return tf.reshape(tf.pad(e, pads), shape);
}

/** Pads (positive) or crops (negative) tensor axis `axis` by `before` / `after` elements. */
function padOrCrop(t: tf.Tensor, axis: number, before: number, after: number): tf.Tensor {
  let r = t;
  if (before < 0 || after < 0) {
    const begin = r.shape.map((_, i) => (i === axis ? Math.max(0, -before) : 0));
    const size = r.shape.map((d, i) => (i === axis ? d - Math.max(0, -before) - Math.max(0, -after) : d));
    r = tf.slice(r, begin, size);
  }
  if (before > 0 || after > 0) {
    r = tf.pad(r, r.shape.map((_, i) => (i === axis ? [Math.max(0, before), Math.max(0, after)] : [0, 0]) as [number, number]));
  }
  return r;
}

function convBackward(pm: PreparedModel, node: IrNode, op: ConvOp, gy: tf.Tensor, inShape: Shape, mode: ConvBackwardMode): tf.Tensor {
  const info = pm.convInfo(node);
  const [cin, hin, win] = inShape as [number, number, number];
  const b = gy.shape[0]!;
  if (mode === 'transpose' && info.kind === 'standard' && op.dilations[0] === 1 && op.dilations[1] === 1) {
    const filter = pm.convFilters(node)[0]!;
    return tf.conv2dTranspose(gy as tf.Tensor4D, filter, [b, hin, win, cin], op.strides, explicitPads(op.pads));
  }
  // Correlate the stride-dilated gradient with the flipped kernel (stride 1, the conv's dilation).
  let d = dilate(dilate(gy, 1, op.strides[0]), 2, op.strides[1]);
  const pads: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [0, 0], [0, 0], [0, 0]];
  for (const [axis, size, pBegin, k, dil] of [
    [1, hin, op.pads[0], op.kernel[0], op.dilations[0]],
    [2, win, op.pads[1], op.kernel[1], op.dilations[1]],
  ] as const) {
    const before = (k - 1) * dil - pBegin;
    const after = size + (k - 1) * dil - before - d.shape[axis]!;
    d = padOrCrop(d, axis, Math.min(0, before), Math.min(0, after));
    pads[axis] = [Math.max(0, before), Math.max(0, after)];
  }
  const filters = pm.convBackwardFilters(node);
  const run = (t: tf.Tensor, f: tf.Tensor4D, depthwise: boolean): tf.Tensor4D =>
    depthwise
      ? tf.depthwiseConv2d(t as tf.Tensor4D, f, 1, pads, 'NHWC', op.dilations)
      : tf.conv2d(t as tf.Tensor4D, f, 1, pads, 'NHWC', op.dilations);
  if (info.kind === 'standard') return run(d, filters[0]!, false);
  if (info.kind === 'depthwise') {
    if (info.multiplier === 1) return run(d, filters[0]!, true);
    const c = d.shape[3]!;
    const parts = filters.map((f, m) =>
      run(tf.stridedSlice(d, [0, 0, 0, m], [d.shape[0]!, d.shape[1]!, d.shape[2]!, c], [1, 1, 1, info.multiplier]), f, true),
    );
    return tf.addN(parts);
  }
  const groups = tf.split(d, op.group, 3);
  return tf.concat(groups.map((t, i) => run(t, filters[i]!, false)), 3);
}

/**
 * Sums window contributions back onto the input: part (a, b) (row-major kernel offset) is the gradient that
 * each output cell sends to input cell (ho·s + a − top, wo·s + b − left). Cells in the padding are dropped.
 */
function scatterWindows(parts: tf.Tensor[], op: PoolOp, geo: PoolGeometry, inShape: Shape): tf.Tensor {
  const [kh, kw] = op.kernel;
  const [sh, sw] = op.strides;
  const placed = parts.map((p, i) => {
    const a = Math.floor(i / kw);
    const bb = i % kw;
    const dil = dilate(dilate(p, 1, sh), 2, sw); // [B, Ho·sh, Wo·sw, C]
    return tf.pad(dil, [
      [0, 0],
      [a, kh - 1 - a],
      [bb, kw - 1 - bb],
      [0, 0],
    ]);
  });
  return cropToInput(tf.addN(placed), geo, inShape); // rows cover padded coordinates [0, Ho·sh + kh − 1)
}

/** Whether pooling windows tile the (padded) input without overlap: kernel = stride. */
function tiles(op: PoolOp): boolean {
  return op.kernel[0] === op.strides[0] && op.kernel[1] === op.strides[1];
}

/**
 * From a gradient over padded coordinates (row 0 = first padded row), keeps the image rows [top, top + h) and
 * columns [left, left + w), with zeros where it did not reach.
 */
function cropToInput(full: tf.Tensor, geo: PoolGeometry, inShape: Shape): tf.Tensor {
  const [, h, w] = inShape as [number, number, number];
  const rows = padOrCrop(full, 1, -geo.top, remainderAfter(full.shape[1]!, geo.top, h));
  return padOrCrop(rows, 2, -geo.left, remainderAfter(full.shape[2]!, geo.left, w));
}

/** Elements to add (positive) or remove (negative) after an axis of length `len` cropped from `begin` to size `size`. */
function remainderAfter(len: number, begin: number, size: number): number {
  return size - (len - begin);
}

function sliceBackward(gy: tf.Tensor, inShape: Shape, op: { starts: number[]; ends: number[]; axes: number[]; steps: number[] }): tf.Tensor {
  const { begin, size, strides } = sliceBounds(inShape, op);
  const full = layoutShape(gy.shape[0]!, inShape);
  let r = gy;
  for (let t = 1; t < full.length; t++) {
    if (size[t] === full[t] && strides[t] === 1) continue;
    r = dilate(r, t, strides[t]!); // length size·stride
    r = padOrCrop(r, t, begin[t]!, full[t]! - begin[t]! - r.shape[t]!);
  }
  return r;
}

/** Sums a gradient of per-sample shape `out` down to an operand of per-sample shape `s` it was broadcast from. */
function unbroadcast(gy: tf.Tensor, s: Shape, out: Shape): tf.Tensor {
  if (s.length === out.length && s.every((d, i) => d === out[i])) return tf.clone(gy); // each input its own handle
  const padded = [...new Array<number>(out.length - s.length).fill(1), ...s];
  const pl = layoutShape(1, padded);
  const ol = layoutShape(1, out);
  const axes = pl.map((d, t) => (t > 0 && d === 1 && ol[t]! > 1 ? t : -1)).filter((t) => t > 0);
  const summed = axes.length ? tf.sum(gy, axes, true) : gy;
  const b = gy.shape[0]!;
  return fromNchwTensor(tf.reshape(toNchw(summed, padded), [b, ...s]), s);
}
