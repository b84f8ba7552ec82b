/**
 * ONNX operators (opset 16 semantics, NCHW) as tfjs ops, for the tensor-graph interpreter (./interpret.ts).
 * int64 values are int32 tensors (shapes, indices); bool values are bool tensors. Convolutions run as tfjs
 * NHWC convolutions with transposes around them; pooling runs as a loop over the window taps (strided
 * slices), which gives max-pool arg-max indices exactly as onnxruntime defines them (flat over NCHW, the
 * first maximum in row-major window order) with kernels every backend has. ConvTranspose is a stride-1
 * convolution of the zero-interleaved, padded input with the flipped kernel (tfjs-wasm's transposed
 * convolution kernel is slow).
 */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import { windowOutput } from '../../graph/ir-shapes';
import { attrFloat, attrInt, attrInts, attrString, type TensorNode } from '../../graph/tensor-graph';

/** What an op implementation may ask of the interpreter. */
export interface OpContext {
  /** The values of input `k` as numbers on the host (int64 / small inputs: shapes, axes, pads). */
  ints(k: number): number[];
  /** The scalar value of input `k`. */
  scalar(k: number): number;
  /**
   * A tensor derived from input `k` (a weight in another layout): cached for the program's lifetime when that
   * input is a constant, else made for this run.
   */
  derived(k: number, kind: string, make: (t: tf.Tensor) => tf.Tensor): tf.Tensor;
}

type In = tf.Tensor | undefined;
export type OpImpl = (n: TensorNode, ins: In[], ctx: OpContext) => tf.Tensor[];

const one = (f: (n: TensorNode, ins: In[], ctx: OpContext) => tf.Tensor): OpImpl => (n, ins, ctx) => [f(n, ins, ctx)];

function need(n: TensorNode, ins: In[], k: number): tf.Tensor {
  const t = ins[k];
  if (!t) throw new Error(`${n.opType} ${n.name}: input ${k} is missing`);
  return t;
}

const x0 = (n: TensorNode, ins: In[]): tf.Tensor => need(n, ins, 0);

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function sizeOf(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- windows

interface Window {
  kernel: [number, number];
  strides: [number, number];
  pads: [number, number, number, number];
  dil: [number, number];
  out: [number, number];
}

function windowOf(n: TensorNode, h: number, w: number, kernelFromWeight?: [number, number]): Window {
  if (attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw unimplemented(`${n.opType} ${n.name}: auto_pad is not supported`);
  const k = attrInts(n, 'kernel_shape', kernelFromWeight);
  if (!k || k.length !== 2) throw unimplemented(`${n.opType} ${n.name}: only 2-D windows are supported`);
  const s = attrInts(n, 'strides', [1, 1])!;
  const p = attrInts(n, 'pads', [0, 0, 0, 0])!;
  const d = attrInts(n, 'dilations', [1, 1])!;
  const ceil = attrInt(n, 'ceil_mode', 0) === 1;
  return {
    kernel: [k[0], k[1]],
    strides: [s[0], s[1]],
    pads: [p[0], p[1], p[2], p[3]],
    dil: [d[0], d[1]],
    out: [windowOutput(h, k[0], s[0], p[0], p[2], d[0], ceil), windowOutput(w, k[1], s[1], p[1], p[3], d[1], ceil)],
  };
}

/**
 * Calls `each(tap, a, e)` for every window tap (row-major), where `tap` [N, C, Ho, Wo] holds each window's
 * element at kernel offset (a, e), read from x padded with `fill`.
 */
function forEachTap(x: tf.Tensor, win: Window, fill: number, each: (tap: tf.Tensor, a: number, e: number) => void): void {
  const [nb, c, h, w] = x.shape as [number, number, number, number];
  const [kh, kw] = win.kernel;
  const [sh, sw] = win.strides;
  const [dh, dw] = win.dil;
  const [pt, pl, pb, pr] = win.pads;
  const [ho, wo] = win.out;
  // rows the windows reach: (ho-1)*sh + dh*(kh-1) + 1 from -pt (ceil mode may reach past the end pad)
  const needH = (ho - 1) * sh + dh * (kh - 1) + 1;
  const needW = (wo - 1) * sw + dw * (kw - 1) + 1;
  const bottom = Math.max(pb, needH - h - pt);
  const right = Math.max(pr, needW - w - pl);
  const xp =
    pt || pl || bottom || right
      ? tf.pad(x, [
          [0, 0],
          [0, 0],
          [pt, bottom],
          [pl, right],
        ], fill)
      : x;
  for (let a = 0; a < kh; a++)
    for (let e = 0; e < kw; e++) {
      const r0 = a * dh;
      const c0 = e * dw;
      const tap =
        sh === 1 && sw === 1
          ? tf.slice(xp, [0, 0, r0, c0], [nb, c, ho, wo])
          : tf.stridedSlice(xp, [0, 0, r0, c0], [nb, c, r0 + (ho - 1) * sh + 1, c0 + (wo - 1) * sw + 1], [1, 1, sh, sw]);
      each(tap, a, e);
    }
}

const maxPool: OpImpl = (n, ins) => {
  const x = x0(n, ins);
  if (x.rank !== 4) throw unimplemented(`MaxPool ${n.name}: only 4-D inputs are supported`);
  if (attrInt(n, 'storage_order', 0) !== 0) throw unimplemented(`MaxPool ${n.name}: storage_order 1 is not supported`);
  const [nb, c, h, w] = x.shape as [number, number, number, number];
  const win = windowOf(n, h, w);
  const [ho, wo] = win.out;
  const withIndices = n.outputs.length > 1 && n.outputs[1] !== '';
  let best: tf.Tensor | undefined;
  let idx: tf.Tensor | undefined;
  forEachTap(x, win, -Infinity, (tap, a, e) => {
    if (!best) {
      best = tap;
      if (withIndices) idx = tf.broadcastTo(tapIndex(win, w, a, e), [nb, c, ho, wo]);
      return;
    }
    if (withIndices) {
      // strictly greater: the first maximum in window order wins (onnxruntime's rule)
      const up = tf.greater(tap, best);
      idx = tf.where(up, tf.broadcastTo(tapIndex(win, w, a, e), [nb, c, ho, wo]), idx!);
      best = tf.where(up, tap, best);
    } else best = tf.maximum(best, tap);
  });
  if (!withIndices) return [best!];
  // flat NCHW index: ((n*C + c)*H + row)*W + col
  const plane = tf.reshape(tf.mul(tf.range(0, nb * c, 1, 'int32'), tf.scalar(h * w, 'int32')), [nb, c, 1, 1]);
  return [best!, tf.add(idx!, plane)];
};

/** [1, 1, Ho, Wo] int32: row*W + col of tap (a, e) of every window (positions in the pad are never chosen). */
function tapIndex(win: Window, w: number, a: number, e: number): tf.Tensor {
  const [ho, wo] = win.out;
  const out = new Int32Array(ho * wo);
  for (let i = 0; i < ho; i++)
    for (let j = 0; j < wo; j++) {
      const row = i * win.strides[0] - win.pads[0] + a * win.dil[0];
      const col = j * win.strides[1] - win.pads[1] + e * win.dil[1];
      out[i * wo + j] = row * w + col;
    }
  return tf.tensor4d(out, [1, 1, ho, wo], 'int32');
}

const averagePool = one((n, ins) => {
  const x = x0(n, ins);
  if (x.rank !== 4) throw unimplemented(`AveragePool ${n.name}: only 4-D inputs are supported`);
  const [, , h, w] = x.shape as [number, number, number, number];
  const win = windowOf(n, h, w);
  const includePad = attrInt(n, 'count_include_pad', 0) === 1;
  let sum: tf.Tensor | undefined;
  forEachTap(x, win, 0, (tap) => (sum = sum ? tf.add(sum, tap) : tap));
  const [ho, wo] = win.out;
  // the divisor of each output position, as onnxruntime computes it
  const inv = new Float32Array(ho * wo);
  const size = (start: number, k: number, len: number, padEnd: number): number =>
    includePad ? Math.min(start + k, len + padEnd) - start : Math.min(start + k, len) - Math.max(start, 0);
  for (let i = 0; i < ho; i++)
    for (let j = 0; j < wo; j++) {
      const sh = i * win.strides[0] - win.pads[0];
      const sw = j * win.strides[1] - win.pads[1];
      inv[i * wo + j] = 1 / (size(sh, win.kernel[0], h, win.pads[2]) * size(sw, win.kernel[1], w, win.pads[3]));
    }
  return tf.mul(sum!, tf.tensor4d(inv, [1, 1, ho, wo]));
});

// ---------------------------------------------------------------------------------------------- convolution

const toNhwc = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
const toNchw = (t: tf.Tensor): tf.Tensor4D => tf.transpose(t, [0, 3, 1, 2]) as tf.Tensor4D;

/**
 * ONNX Conv on NCHW `x` with weight `w` [M, C/g, kh, kw] (filters come through `filters`, which caches the
 * NHWC layouts of constant weights).
 */
function convNchw(
  n: TensorNode,
  x: tf.Tensor,
  weightShape: number[],
  filters: (kind: 'standard' | 'depthwise' | 'grouped') => tf.Tensor4D[],
  bias: tf.Tensor | undefined,
  win: Window,
  group: number,
): tf.Tensor {
  const [m, cg] = weightShape;
  const c = x.shape[1]!;
  if (cg * group !== c) throw new Error(`Conv ${n.name}: input has ${c} channels, the weight expects ${cg * group}`);
  if (win.strides.some((s) => s > 1) && win.dil.some((d) => d > 1)) {
    // tfjs convolutions take strides or dilations above 1, not both: every stride-th output of the stride-1 conv
    const dense = convNchw(n, x, weightShape, filters, bias, { ...win, strides: [1, 1] }, group);
    const [nb, co] = dense.shape as number[];
    const [sh, sw] = win.strides;
    const [ho, wo] = win.out;
    return tf.stridedSlice(dense, [0, 0, 0, 0], [nb!, co!, (ho - 1) * sh + 1, (wo - 1) * sw + 1], [1, 1, sh, sw]);
  }
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [win.pads[0], win.pads[2]],
    [win.pads[1], win.pads[3]],
    [0, 0],
  ];
  const xh = toNhwc(x);
  let y: tf.Tensor4D;
  if (group === 1) {
    y = tf.conv2d(xh, filters('standard')[0]!, win.strides, pad, 'NHWC', win.dil);
  } else if (cg === 1 && m % c === 0) {
    y = tf.depthwiseConv2d(xh, filters('depthwise')[0]!, win.strides, pad, 'NHWC', win.dil);
  } else {
    const parts = tf.split(xh, group, 3);
    const fs = filters('grouped');
    y = tf.concat(parts.map((p, i) => tf.conv2d(p as tf.Tensor4D, fs[i]!, win.strides, pad, 'NHWC', win.dil)), 3);
  }
  if (bias) y = tf.add(y, bias);
  return toNchw(y);
}

/** NHWC filters of an ONNX conv weight [M, C/g, kh, kw]. */
function nhwcFilters(w: tf.Tensor, kind: 'standard' | 'depthwise' | 'grouped', group: number): tf.Tensor4D[] {
  if (kind === 'standard') return [tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D];
  const [m, , kh, kw] = w.shape as number[];
  if (kind === 'depthwise') {
    // [M, 1, kh, kw] with M = C·mult and output channel c·mult + j -> [kh, kw, C, mult]
    return [tf.transpose(tf.reshape(w, [group, m! / group, kh!, kw!]), [2, 3, 0, 1]) as tf.Tensor4D];
  }
  return tf.split(w, group, 0).map((part) => tf.transpose(part, [2, 3, 1, 0]) as tf.Tensor4D);
}

/** Filters as a one-tensor list for caching (grouped convs have one per group). */
function filterFor(ctx: OpContext, k: number, group: number): (kind: 'standard' | 'depthwise' | 'grouped') => tf.Tensor4D[] {
  return (kind) => {
    if (kind !== 'grouped') return [ctx.derived(k, `conv:${kind}:${group}`, (w) => nhwcFilters(w, kind, group)[0]!) as tf.Tensor4D];
    const all = ctx.derived(k, `conv:grouped:${group}`, (w) => tf.stack(nhwcFilters(w, 'grouped', group)));
    return tf.unstack(all) as tf.Tensor4D[];
  };
}

const conv = one((n, ins, ctx) => {
  const x = x0(n, ins);
  const w = need(n, ins, 1);
  if (x.rank !== 4) throw unimplemented(`Conv ${n.name}: only 2-D convolutions are supported`);
  const [, , h, wd] = x.shape as number[];
  const kshape = w.shape as number[];
  const win = windowOf(n, h!, wd!, [kshape[2]!, kshape[3]!]);
  const group = attrInt(n, 'group', 1);
  return convNchw(n, x, kshape, filterFor(ctx, 1, group), ins[2], win, group);
});

/**
 * ConvTranspose: the input with strides-1 zeros between its elements, padded by dilation·(kernel-1) minus the
 * op's pads (plus output_padding at the end), convolved (stride 1) with the kernel flipped and its in/out axes
 * swapped: K[g·Mg + m, c, a, b] = W[g·Cg + c, m, kh-1-a, kw-1-b].
 */
const convTranspose = one((n, ins, ctx) => {
  const x = x0(n, ins);
  const w = need(n, ins, 1);
  if (x.rank !== 4) throw unimplemented(`ConvTranspose ${n.name}: only 2-D convolutions are supported`);
  if (attrInts(n, 'output_shape', undefined)) throw unimplemented(`ConvTranspose ${n.name}: output_shape is not supported`);
  if (attrString(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw unimplemented(`ConvTranspose ${n.name}: auto_pad is not supported`);
  const [nb, c, h, wd] = x.shape as [number, number, number, number];
  const [wc, mg, kh, kw] = w.shape as [number, number, number, number];
  const group = attrInt(n, 'group', 1);
  if (wc !== c) throw new Error(`ConvTranspose ${n.name}: input has ${c} channels, the weight ${wc}`);
  const [sh, sw] = attrInts(n, 'strides', [1, 1])!;
  const [dh, dw] = attrInts(n, 'dilations', [1, 1])!;
  const [pt, pl, pb, pr] = attrInts(n, 'pads', [0, 0, 0, 0])!;
  const [oph, opw] = attrInts(n, 'output_padding', [0, 0])!;
  let z = x;
  if (sh > 1 || sw > 1) {
    // [N·C·H, 1, W, 1] -> zeros after each element -> [N, C, H·sh, W·sw] -> drop the trailing zeros (4-D:
    // tfjs-webgpu's Pad shader fails to compile above rank 4)
    const r = tf.reshape(x, [nb * c * h, 1, wd, 1]);
    const padded = tf.pad(r, [
      [0, 0],
      [0, sh - 1],
      [0, 0],
      [0, sw - 1],
    ]);
    z = tf.slice(tf.reshape(padded, [nb, c, h * sh, wd * sw]), [0, 0, 0, 0], [nb, c, (h - 1) * sh + 1, (wd - 1) * sw + 1]);
  }
  const edges = [dh * (kh - 1) - pt, dw * (kw - 1) - pl, dh * (kh - 1) - pb + oph, dw * (kw - 1) - pr + opw];
  const grow = edges.map((e) => Math.max(e, 0));
  if (grow.some((e) => e > 0)) z = tf.pad(z, [[0, 0], [0, 0], [grow[0]!, grow[2]!], [grow[1]!, grow[3]!]]);
  const cut = edges.map((e) => Math.max(-e, 0));
  if (cut.some((e) => e > 0)) {
    const [, , zh, zw] = z.shape as number[];
    z = tf.slice(z, [0, 0, cut[0]!, cut[1]!], [nb, c, zh! - cut[0]! - cut[2]!, zw! - cut[1]! - cut[3]!]);
  }
  const cg = c / group;
  const flipped = (wt: tf.Tensor): tf.Tensor => {
    // [G·Cg, Mg, kh, kw] -> [G, Cg, Mg, kh, kw] -> [G, Mg, Cg, kh, kw] -> [G·Mg, Cg, kh, kw], spatially flipped
    const r = tf.transpose(tf.reshape(wt, [group, cg, mg, kh, kw]), [0, 2, 1, 3, 4]);
    return tf.reverse(tf.reshape(r, [group * mg, cg, kh, kw]), [2, 3]);
  };
  const k: OpContext = {
    ...ctx,
    derived: (_i, kind, make) => ctx.derived(1, `flipped:${group}:${kind}`, (wt) => make(flipped(wt))),
  };
  const [, , zh, zw] = z.shape as number[];
  const win: Window = { kernel: [kh, kw], strides: [1, 1], pads: [0, 0, 0, 0], dil: [dh, dw], out: [zh! - dh * (kh - 1), zw! - dw * (kw - 1)] };
  return convNchw(n, z, [group * mg, cg, kh, kw], filterFor(k, 1, group), ins[2], win, group);
});

// ---------------------------------------------------------------------------------------------- shapes

function reshapeTo(n: TensorNode, x: tf.Tensor, shape: number[]): tf.Tensor {
  const allowZero = attrInt(n, 'allowzero', 0) === 1;
  return tf.reshape(x, shape.map((d, i) => (d === 0 && !allowZero ? x.shape[i]! : d)));
}

function padNd(x: tf.Tensor, pads: number[], value: number): tf.Tensor {
  const r = x.rank;
  const grow = x.shape.map((_, i) => [Math.max(pads[i]!, 0), Math.max(pads[i + r]!, 0)] as [number, number]);
  let out = grow.some(([a, b]) => a > 0 || b > 0) ? padFolded(x, grow, value) : x;
  const cutB = x.shape.map((_, i) => Math.max(-pads[i]!, 0));
  const cutE = x.shape.map((_, i) => Math.max(-pads[i + r]!, 0));
  if (cutB.some((v) => v > 0) || cutE.some((v) => v > 0)) {
    out = tf.slice(out, cutB, out.shape.map((d, i) => d - cutB[i]! - cutE[i]!));
  }
  return out === x ? tf.clone(x) : out;
}

/**
 * tf.pad with runs of unpadded axes folded into one, so that the padded tensor has as low a rank as the pads
 * allow (tfjs-webgpu's Pad shader fails to compile above rank 4; the values are the same on every backend).
 */
function padFolded(x: tf.Tensor, grow: Array<[number, number]>, value: number): tf.Tensor {
  const shape: number[] = [];
  const pads: Array<[number, number]> = [];
  x.shape.forEach((d, i) => {
    const g = grow[i]!;
    const prev = pads[pads.length - 1];
    const flat = g[0] === 0 && g[1] === 0;
    if (flat && prev && prev[0] === 0 && prev[1] === 0) shape[shape.length - 1]! *= d;
    else {
      shape.push(d);
      pads.push([g[0], g[1]]);
    }
  });
  if (shape.length === x.rank) return tf.pad(x, grow, value);
  const padded = tf.pad(tf.reshape(x, shape), pads, value);
  return tf.reshape(padded, x.shape.map((d, i) => d + grow[i]![0] + grow[i]![1]));
}

const slice = one((n, ins, ctx) => {
  const x = x0(n, ins);
  const starts = ctx.ints(1);
  const ends = ctx.ints(2);
  const axes = ins[3] ? ctx.ints(3) : starts.map((_, i) => i);
  const steps = ins[4] ? ctx.ints(4) : starts.map(() => 1);
  let out = x;
  axes.forEach((a0, i) => {
    const a = normAxis(a0, x.rank);
    const dim = x.shape[a]!;
    const step = steps[i]!;
    if (step === 0) throw new Error(`Slice ${n.name}: step 0`);
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
    }
    if (step === 1) {
      const begin = out.shape.map(() => 0);
      const size = [...out.shape];
      begin[a] = s;
      size[a] = Math.max(e - s, 0);
      out = tf.slice(out, begin, size);
      return;
    }
    const idx: number[] = [];
    for (let k = s; step > 0 ? k < e : k > e; k += step) idx.push(k);
    out = tf.gather(out, tf.tensor1d(idx, 'int32'), a);
  });
  return out === x ? tf.clone(x) : out;
});

const split = (n: TensorNode, ins: In[], ctx: OpContext): tf.Tensor[] => {
  const x = x0(n, ins);
  const axis = normAxis(attrInt(n, 'axis', 0), x.rank);
  const sizes = ins[1] ? ctx.ints(1) : (attrInts(n, 'split', undefined) ?? n.outputs.length);
  return tf.split(x, sizes, axis);
};

function unsqueezeShape(shape: readonly number[], axes: number[]): number[] {
  const r = shape.length + axes.length;
  const at = new Set(axes.map((a) => normAxis(a, r)));
  const out: number[] = [];
  let k = 0;
  for (let i = 0; i < r; i++) out.push(at.has(i) ? 1 : shape[k++]!);
  return out;
}

function axesOf(n: TensorNode, ins: In[], ctx: OpContext, k: number): number[] | undefined {
  if (ins[k]) return ctx.ints(k);
  return attrInts(n, 'axes', undefined);
}

function reduce(f: (x: tf.Tensor, axes: number[], keep: boolean) => tf.Tensor): OpImpl {
  return one((n, ins, ctx) => {
    const x = x0(n, ins);
    let axes = axesOf(n, ins, ctx, 1);
    const keep = attrInt(n, 'keepdims', 1) === 1;
    if (!axes || axes.length === 0) {
      if (attrInt(n, 'noop_with_empty_axes', 0) === 1) return tf.clone(x);
      axes = x.shape.map((_, i) => i);
    }
    return f(x, axes.map((a) => normAxis(a, x.rank)), keep);
  });
}

/** Resize, nearest mode with asymmetric coordinates and floor rounding (what the builders emit). */
const resize = one((n, ins, ctx) => {
  const x = x0(n, ins);
  const mode = attrString(n, 'mode', 'nearest');
  const coord = attrString(n, 'coordinate_transformation_mode', 'half_pixel');
  const rounding = attrString(n, 'nearest_mode', 'round_prefer_floor');
  if (mode !== 'nearest' || coord !== 'asymmetric' || rounding !== 'floor') {
    throw unimplemented(`Resize ${n.name}: only mode nearest with asymmetric coordinates and floor rounding is supported`);
  }
  const sizes = ins[3] ? ctx.ints(3) : undefined;
  const scales = sizes ? x.shape.map((d, i) => sizes[i]! / d) : Array.from(need(n, ins, 2).dataSync());
  const lens = x.shape.map((d, a) => (sizes ? sizes[a]! : Math.floor(d * scales[a]!)));
  if (scales.every((sc, a) => Number.isInteger(sc) && sc >= 1 && lens[a] === x.shape[a]! * sc)) {
    // whole-number scales: every element repeated sc times along its axis, one 4-D Tile per scaled axis
    // ([before, d, 1, after] tiled by [1, 1, sc, 1]; tfjs-webgpu's Tile reads back to the CPU above rank 4)
    let out = x;
    scales.forEach((sc, a) => {
      if (sc === 1) return;
      const before = out.shape.slice(0, a).reduce((p, d) => p * d, 1);
      const after = out.shape.slice(a + 1).reduce((p, d) => p * d, 1);
      const tiled = tf.tile(tf.reshape(out, [before, out.shape[a]!, 1, after]), [1, 1, sc, 1]);
      out = tf.reshape(tiled, out.shape.map((d, i) => (i === a ? d * sc : d)));
    });
    return out === x ? tf.clone(x) : out;
  }
  let out = x;
  x.shape.forEach((d, a) => {
    const scale = scales[a]!;
    const len = lens[a]!;
    if (len === d && scale === 1) return;
    const idx = Array.from({ length: len }, (_, i) => Math.min(Math.floor(i / scale), d - 1));
    out = tf.gather(out, tf.tensor1d(idx, 'int32'), a);
  });
  return out === x ? tf.clone(x) : out;
});

/**
 * ScatterElements (reduction none or add) as a scatterND over the flat data: each update's linear index is
 * its own position's, with the scattered axis replaced by the index given.
 */
const scatterElements = one((n, ins) => {
  const data = x0(n, ins);
  const indices = need(n, ins, 1);
  const updates = need(n, ins, 2);
  const reduction = attrString(n, 'reduction', 'none');
  if (reduction !== 'none' && reduction !== 'add') throw unimplemented(`ScatterElements ${n.name}: reduction ${reduction} is not supported`);
  const r = data.rank;
  const axis = normAxis(attrInt(n, 'axis', 0), r);
  const s = indices.shape;
  const ds = data.shape;
  const strides = ds.map((_, j) => sizeOf(ds.slice(j + 1)));
  const idx = tf.cast(indices, 'int32');
  const along = tf.where(tf.less(idx, 0), tf.add(idx, tf.scalar(ds[axis]!, 'int32')), idx);
  let linear: tf.Tensor = tf.mul(along, tf.scalar(strides[axis]!, 'int32'));
  s.forEach((len, j) => {
    if (j === axis || len === 1) return;
    const shape = s.map(() => 1);
    shape[j] = len;
    linear = tf.add(linear, tf.reshape(tf.range(0, len * strides[j]!, strides[j]!, 'int32'), shape));
  });
  const flat = tf.reshape(linear, [sizeOf(s), 1]);
  const u = tf.reshape(updates, [sizeOf(s)]);
  const scattered = tf.reshape(tf.scatterND(flat, u, [sizeOf(ds)]), ds);
  if (reduction === 'add') return tf.add(data, scattered);
  const hit = tf.greater(tf.reshape(tf.scatterND(flat, tf.onesLike(u), [sizeOf(ds)]), ds), 0);
  return tf.where(hit, scattered, data);
});

function castTo(to: number): tf.DataType {
  if (to === 1) return 'float32';
  if (to === 6 || to === 7) return 'int32';
  if (to === 9) return 'bool';
  throw unimplemented(`Cast to ONNX type ${to} is not supported`);
}

function constantValue(n: TensorNode): { value: number; dtype: tf.DataType } {
  const a = n.attrs.value;
  if (!a) return { value: 0, dtype: 'float32' };
  if (!('t' in a)) throw new Error(`ConstantOfShape ${n.name}: value is not a tensor`);
  return { value: Number(a.t.data[0] ?? 0), dtype: a.t.type === 'float' ? 'float32' : 'int32' };
}

function hardSigmoid(x: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

// ---------------------------------------------------------------------------------------------- the table

/** Every ONNX op type the interpreter runs. */
export const OPS: Record<string, OpImpl> = {
  Identity: one((n, ins) => tf.clone(x0(n, ins))),
  Relu: one((n, ins) => tf.relu(x0(n, ins))),
  LeakyRelu: one((n, ins) => tf.leakyRelu(x0(n, ins), attrFloat(n, 'alpha', 0.01))),
  Sigmoid: one((n, ins) => tf.sigmoid(x0(n, ins))),
  Tanh: one((n, ins) => tf.tanh(x0(n, ins))),
  HardSigmoid: one((n, ins) => hardSigmoid(x0(n, ins), attrFloat(n, 'alpha', 0.2), attrFloat(n, 'beta', 0.5))),
  HardSwish: one((n, ins) => tf.mul(x0(n, ins), hardSigmoid(x0(n, ins), 1 / 6, 0.5))),
  Clip: one((n, ins, ctx) => {
    const lo = ins[1] ? ctx.scalar(1) : -Infinity;
    const hi = ins[2] ? ctx.scalar(2) : Infinity;
    return tf.minimum(tf.maximum(x0(n, ins), lo), hi);
  }),
  Sign: one((n, ins) => tf.sign(x0(n, ins))),
  Neg: one((n, ins) => tf.neg(x0(n, ins))),
  Abs: one((n, ins) => tf.abs(x0(n, ins))),
  Add: one((n, ins) => tf.add(x0(n, ins), need(n, ins, 1))),
  Sub: one((n, ins) => tf.sub(x0(n, ins), need(n, ins, 1))),
  Mul: one((n, ins) => tf.mul(x0(n, ins), need(n, ins, 1))),
  Div: one((n, ins) => tf.div(x0(n, ins), need(n, ins, 1))),
  Sum: one((n, ins) => ins.map((t, k) => t ?? need(n, ins, k)).reduce((a, b) => tf.add(a, b))),
  Greater: one((n, ins) => tf.greater(x0(n, ins), need(n, ins, 1))),
  Less: one((n, ins) => tf.less(x0(n, ins), need(n, ins, 1))),
  LessOrEqual: one((n, ins) => tf.lessEqual(x0(n, ins), need(n, ins, 1))),
  GreaterOrEqual: one((n, ins) => tf.greaterEqual(x0(n, ins), need(n, ins, 1))),
  Equal: one((n, ins) => tf.equal(x0(n, ins), need(n, ins, 1))),
  And: one((n, ins) => tf.logicalAnd(x0(n, ins), need(n, ins, 1))),
  Or: one((n, ins) => tf.logicalOr(x0(n, ins), need(n, ins, 1))),
  Not: one((n, ins) => tf.logicalNot(x0(n, ins))),
  Where: one((n, ins) => {
    const [c, a, b] = [x0(n, ins), need(n, ins, 1), need(n, ins, 2)];
    const s = broadcastShape(broadcastShape(c.shape, a.shape), b.shape);
    return tf.where(tf.broadcastTo(c, s), tf.broadcastTo(a, s), tf.broadcastTo(b, s));
  }),
  Cast: one((n, ins) => tf.cast(x0(n, ins), castTo(attrInt(n, 'to', 1)))),
  MatMul: one((n, ins) => tf.matMul(x0(n, ins), need(n, ins, 1))),
  Gemm: one((n, ins) => {
    const alpha = attrFloat(n, 'alpha', 1);
    const beta = attrFloat(n, 'beta', 1);
    let y = tf.matMul(x0(n, ins), need(n, ins, 1), attrInt(n, 'transA', 0) === 1, attrInt(n, 'transB', 0) === 1);
    if (alpha !== 1) y = tf.mul(y, alpha);
    const c = ins[2];
    if (c) y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
    return y;
  }),
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: maxPool,
  AveragePool: averagePool,
  GlobalAveragePool: one((n, ins) => tf.mean(x0(n, ins), [2, 3], true)),
  GlobalMaxPool: one((n, ins) => tf.max(x0(n, ins), [2, 3], true)),
  Resize: resize,
  ScatterElements: scatterElements,
  Reshape: one((n, ins, ctx) => reshapeTo(n, x0(n, ins), ctx.ints(1))),
  Flatten: one((n, ins) => {
    const x = x0(n, ins);
    const axis = normAxis(attrInt(n, 'axis', 1), x.rank);
    return tf.reshape(x, [sizeOf(x.shape.slice(0, axis)), sizeOf(x.shape.slice(axis))]);
  }),
  Transpose: one((n, ins) => {
    const x = x0(n, ins);
    return tf.transpose(x, attrInts(n, 'perm', x.shape.map((_, i) => x.rank - 1 - i)));
  }),
  Concat: one((n, ins) => {
    const parts = ins.map((t, k) => t ?? need(n, ins, k));
    return tf.concat(parts, normAxis(attrInt(n, 'axis', 0), parts[0]!.rank));
  }),
  Split: split,
  Pad: one((n, ins, ctx) => {
    const mode = attrString(n, 'mode', 'constant');
    if (mode !== 'constant') throw unimplemented(`Pad ${n.name}: mode ${mode} is not supported`);
    return padNd(x0(n, ins), ctx.ints(1), ins[2] ? ctx.scalar(2) : 0);
  }),
  Slice: slice,
  Expand: one((n, ins, ctx) => {
    const x = x0(n, ins);
    return tf.broadcastTo(x, broadcastShape(x.shape, ctx.ints(1)));
  }),
  Shape: one((n, ins) => {
    const s = x0(n, ins).shape;
    const r = s.length;
    const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    return tf.tensor1d(s.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r))), 'int32');
  }),
  ConstantOfShape: one((n, _ins, ctx) => {
    const { value, dtype } = constantValue(n);
    return tf.fill(ctx.ints(0), value, dtype);
  }),
  Unsqueeze: one((n, ins, ctx) => {
    const x = x0(n, ins);
    return tf.reshape(x, unsqueezeShape(x.shape, axesOf(n, ins, ctx, 1) ?? []));
  }),
  Squeeze: one((n, ins, ctx) => {
    const x = x0(n, ins);
    const axes = (axesOf(n, ins, ctx, 1) ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => normAxis(a, x.rank));
    return tf.reshape(x, x.shape.filter((_, i) => !axes.includes(i)));
  }),
  ReduceSum: reduce((x, axes, keep) => tf.sum(x, axes, keep)),
  ReduceMean: reduce((x, axes, keep) => tf.mean(x, axes, keep)),
  ReduceMax: reduce((x, axes, keep) => tf.max(x, axes, keep)),
};
