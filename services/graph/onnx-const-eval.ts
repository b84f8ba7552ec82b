/**
 * Constant folding for ONNX nodes whose inputs are all known at import time: weights and the shape
 * arithmetic exporters emit (Shape/Gather/Unsqueeze/Concat/ConstantOfShape/Reshape/Transpose/Cast/Slice
 * ...). The batch size is the one unknown: a shape value can hold it symbolically (`sym` = BATCH), and
 * moving it around (gather, concat, reshape...) keeps it; arithmetic on it gives DERIVED, which an op
 * that needs the number refuses.
 */
import { TensorProto_DataType as DT } from './generated/onnx/onnx';
import { unimplemented } from '../errors';

export const KNOWN = 0;
export const BATCH = 1;
export const DERIVED = 2;

export interface ConstTensor {
  dims: number[];
  /** Float (Float32Array) or integer/bool (Float64Array) semantics. */
  float: boolean;
  data: Float32Array | Float64Array;
  /** Per element: KNOWN, BATCH (the batch size) or DERIVED (computed from it). Absent: all known. */
  sym?: Uint8Array;
}

export const numel = (dims: number[]): number => dims.reduce((a, b) => a * b, 1);

export function intTensor(values: number[], dims: number[] = [values.length], sym?: Uint8Array): ConstTensor {
  return { dims, float: false, data: Float64Array.from(values), sym };
}

export function hasSym(t: ConstTensor): boolean {
  return t.sym !== undefined && t.sym.some((s) => s !== KNOWN);
}

/** The values as plain numbers; throws when one depends on the batch size. */
export function knownValues(t: ConstTensor, what: string): number[] {
  if (hasSym(t)) throw unimplemented(`${what} depends on the batch size, which this service cannot resolve`);
  return Array.from(t.data);
}

export function stridesOf(dims: number[]): number[] {
  const s = new Array<number>(dims.length).fill(1);
  for (let i = dims.length - 2; i >= 0; i--) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

/** Builds a tensor whose element i is element index[i] of `t`. */
function take(t: ConstTensor, dims: number[], index: ArrayLike<number>): ConstTensor {
  const data = t.float ? new Float32Array(index.length) : new Float64Array(index.length);
  for (let i = 0; i < index.length; i++) data[i] = t.data[index[i]];
  let sym: Uint8Array | undefined;
  if (t.sym) {
    const src = t.sym;
    sym = Uint8Array.from({ length: index.length }, (_, i) => src[index[i]]);
  }
  return { dims, float: t.float, data, sym };
}

const normAxis = (axis: number, rank: number, what: string): number => {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= Math.max(rank, 1)) throw unimplemented(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
};

export function transpose(t: ConstTensor, perm?: number[]): ConstTensor {
  const r = t.dims.length;
  const p = perm && perm.length ? perm : Array.from({ length: r }, (_, i) => r - 1 - i);
  const outDims = p.map((a) => t.dims[a]);
  const inStrides = stridesOf(t.dims);
  const n = numel(outDims);
  const index = new Int32Array(n);
  const outStrides = stridesOf(outDims);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let d = 0; d < r; d++) {
      const c = Math.floor(rem / outStrides[d]);
      rem -= c * outStrides[d];
      src += c * inStrides[p[d]];
    }
    index[i] = src;
  }
  return take(t, outDims, index);
}

/** Resolved slice of one axis: first index, step, count. */
export interface AxisSlice {
  start: number;
  step: number;
  count: number;
}

/** ONNX Slice semantics for one axis of length `dim`. */
export function resolveSlice(dim: number, start: number, end: number, step: number): AxisSlice {
  if (step === 0) throw unimplemented('Slice with step 0');
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
    return { start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
  }
  s = Math.min(Math.max(s, 0), dim - 1);
  e = Math.min(Math.max(e, -1), dim - 1);
  return { start: s, step, count: Math.max(0, Math.ceil((e - s) / step)) };
}

export function slice(t: ConstTensor, starts: number[], ends: number[], axes: number[], steps: number[]): ConstTensor {
  const r = t.dims.length;
  const per: AxisSlice[] = t.dims.map((d) => ({ start: 0, step: 1, count: d }));
  axes.forEach((ax, i) => {
    const a = normAxis(ax, r, 'Slice');
    per[a] = resolveSlice(t.dims[a], starts[i], ends[i], steps[i] ?? 1);
  });
  const outDims = per.map((p) => p.count);
  const inStrides = stridesOf(t.dims);
  const outStrides = stridesOf(outDims);
  const n = numel(outDims);
  const index = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let d = 0; d < r; d++) {
      const c = Math.floor(rem / outStrides[d]);
      rem -= c * outStrides[d];
      src += (per[d].start + c * per[d].step) * inStrides[d];
    }
    index[i] = src;
  }
  return take(t, outDims, index);
}

export function concat(ts: ConstTensor[], axis: number): ConstTensor {
  const r = ts[0].dims.length;
  const a = normAxis(axis, r, 'Concat');
  const outDims = [...ts[0].dims];
  outDims[a] = ts.reduce((s, t) => s + t.dims[a], 0);
  const float = ts.some((t) => t.float);
  const n = numel(outDims);
  const data = float ? new Float32Array(n) : new Float64Array(n);
  const anySym = ts.some((t) => t.sym);
  const sym = anySym ? new Uint8Array(n) : undefined;
  const outer = numel(outDims.slice(0, a));
  const inner = numel(outDims.slice(a + 1));
  let o = 0;
  for (let i = 0; i < outer; i++) {
    for (const t of ts) {
      const block = t.dims[a] * inner;
      for (let k = 0; k < block; k++) {
        data[o] = t.data[i * block + k];
        if (sym && t.sym) sym[o] = t.sym[i * block + k];
        o++;
      }
    }
  }
  return { dims: outDims, float, data, sym };
}

export function gather(t: ConstTensor, indices: ConstTensor, axis: number): ConstTensor {
  const r = t.dims.length;
  const a = normAxis(axis, r, 'Gather');
  const idx = knownValues(indices, 'Gather indices').map((i) => (i < 0 ? i + t.dims[a] : i));
  if (idx.some((i) => i < 0 || i >= t.dims[a])) throw unimplemented(`Gather: index out of range for a dimension of ${t.dims[a]}`);
  const outDims = [...t.dims.slice(0, a), ...indices.dims, ...t.dims.slice(a + 1)];
  const outer = numel(t.dims.slice(0, a));
  const inner = numel(t.dims.slice(a + 1));
  const index = new Int32Array(numel(outDims));
  let o = 0;
  for (let i = 0; i < outer; i++)
    for (const j of idx) for (let k = 0; k < inner; k++) index[o++] = (i * t.dims[a] + j) * inner + k;
  return take(t, outDims, index);
}

export function withDims(t: ConstTensor, dims: number[]): ConstTensor {
  if (numel(dims) !== t.data.length) throw unimplemented(`Reshape of ${t.data.length} elements to [${dims}]`);
  return { ...t, dims };
}

/** ONNX Reshape target resolution (0 copies, -1 infers) for a fully known input shape. */
export function resolveReshape(inDims: number[], target: number[], allowZero: boolean): number[] {
  const out = target.map((d, i) => (d === 0 && !allowZero ? inDims[i] : d));
  const known = out.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const total = numel(inDims);
  const neg = out.filter((d) => d === -1).length;
  if (neg > 1) throw unimplemented(`Reshape to [${target}] has more than one -1`);
  if (neg === 1) {
    if (known === 0 || total % known !== 0) throw unimplemented(`Reshape of [${inDims}] to [${target}] does not divide`);
    return out.map((d) => (d === -1 ? total / known : d));
  }
  if (known !== total) throw unimplemented(`Reshape of [${inDims}] to [${target}] changes the element count`);
  return out;
}

function broadcastDims(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw unimplemented(`cannot broadcast [${a}] with [${b}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Index map of `dims` broadcast to `outDims`. */
export function broadcastIndex(dims: number[], outDims: number[]): Int32Array {
  const r = outDims.length;
  const padded = [...new Array<number>(r - dims.length).fill(1), ...dims];
  const inStrides = stridesOf(padded);
  const outStrides = stridesOf(outDims);
  const n = numel(outDims);
  const index = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rem = i;
    let src = 0;
    for (let d = 0; d < r; d++) {
      const c = Math.floor(rem / outStrides[d]);
      rem -= c * outStrides[d];
      if (padded[d] !== 1) src += c * inStrides[d];
    }
    index[i] = src;
  }
  return index;
}

export function expand(t: ConstTensor, shape: number[]): ConstTensor {
  const outDims = broadcastDims(t.dims, shape);
  return take(t, outDims, broadcastIndex(t.dims, outDims));
}

type Fn2 = (a: number, b: number) => number;

function elementwise(inputs: ConstTensor[], fn: (v: number[]) => number, float: boolean): ConstTensor {
  const outDims = inputs.map((t) => t.dims).reduce(broadcastDims);
  const idx = inputs.map((t) => broadcastIndex(t.dims, outDims));
  const n = numel(outDims);
  const data = float ? new Float32Array(n) : new Float64Array(n);
  const anySym = inputs.some((t) => hasSym(t));
  const sym = anySym ? new Uint8Array(n) : undefined;
  const v = new Array<number>(inputs.length);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < inputs.length; k++) v[k] = inputs[k].data[idx[k][i]];
    data[i] = fn(v);
    if (sym) sym[i] = inputs.some((t, k) => t.sym !== undefined && t.sym[idx[k][i]] !== KNOWN) ? DERIVED : KNOWN;
  }
  return { dims: outDims, float, data, sym };
}

const BINARY: Record<string, Fn2> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Pow: (a, b) => a ** b,
  Min: (a, b) => Math.min(a, b),
  Max: (a, b) => Math.max(a, b),
  Equal: (a, b) => (a === b ? 1 : 0),
  Less: (a, b) => (a < b ? 1 : 0),
  LessOrEqual: (a, b) => (a <= b ? 1 : 0),
  Greater: (a, b) => (a > b ? 1 : 0),
  GreaterOrEqual: (a, b) => (a >= b ? 1 : 0),
  And: (a, b) => (a && b ? 1 : 0),
  Or: (a, b) => (a || b ? 1 : 0),
};
const COMPARISONS = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Not']);

const UNARY: Record<string, (a: number) => number> = {
  Neg: (a) => -a,
  Abs: Math.abs,
  Floor: Math.floor,
  Ceil: Math.ceil,
  Sqrt: Math.sqrt,
  Reciprocal: (a) => 1 / a,
  Exp: Math.exp,
  Not: (a) => (a ? 0 : 1),
  Relu: (a) => Math.max(a, 0),
  Sigmoid: (a) => 1 / (1 + Math.exp(-a)),
  Tanh: Math.tanh,
};

/** Whether `opType` is something `evalConst` can fold. */
export function canFold(opType: string): boolean {
  return (
    opType in BINARY ||
    opType in UNARY ||
    [
      'Identity',
      'Cast',
      'Reshape',
      'Transpose',
      'Squeeze',
      'Unsqueeze',
      'Concat',
      'Gather',
      'Slice',
      'Shape',
      'Size',
      'ConstantOfShape',
      'Expand',
      'Range',
      'Div',
      'Mod',
      'Where',
      'Flatten',
      'Sum',
      'Dropout',
    ].includes(opType)
  );
}

/** Attribute and optional-input access the importer supplies. */
export interface FoldContext {
  opset: number;
  name: string;
  attrInt(name: string, dflt: number): number;
  attrInts(name: string): number[] | undefined;
  /** ConstantOfShape's value. */
  attrTensor(name: string): ConstTensor | undefined;
}

const fromIntTo = (to: number): boolean => to === DT.FLOAT || to === DT.DOUBLE || to === DT.FLOAT16;

/** Evaluates one node on constant inputs (`undefined` = an omitted optional input). */
export function evalConst(opType: string, inputs: (ConstTensor | undefined)[], ctx: FoldContext): ConstTensor {
  const need = (i: number): ConstTensor => {
    const t = inputs[i];
    if (!t) throw unimplemented(`${opType} node '${ctx.name}' is missing input ${i}`);
    return t;
  };
  if (opType in BINARY) {
    const fn = BINARY[opType];
    const a = need(0);
    const b = need(1);
    const float = COMPARISONS.has(opType) ? false : a.float || b.float;
    return elementwise([a, b], (v) => fn(v[0], v[1]), float);
  }
  if (opType in UNARY) {
    const fn = UNARY[opType];
    const a = need(0);
    return elementwise([a], (v) => fn(v[0]), COMPARISONS.has(opType) ? false : a.float);
  }
  switch (opType) {
    case 'Identity':
    case 'Dropout':
      return need(0);
    case 'Sum':
      return elementwise(
        inputs.filter((t): t is ConstTensor => t !== undefined),
        (v) => v.reduce((s, y) => s + y, 0),
        inputs.some((t) => t?.float),
      );
    case 'Div': {
      const a = need(0);
      const b = need(1);
      const float = a.float || b.float;
      return elementwise([a, b], (v) => (float ? v[0] / v[1] : Math.trunc(v[0] / v[1])), float);
    }
    case 'Mod': {
      const a = need(0);
      const b = need(1);
      const fmod = ctx.attrInt('fmod', 0) === 1;
      return elementwise(
        [a, b],
        (v) => (fmod ? v[0] % v[1] : ((v[0] % v[1]) + v[1]) % v[1]),
        a.float || b.float,
      );
    }
    case 'Where':
      return elementwise([need(0), need(1), need(2)], (v) => (v[0] ? v[1] : v[2]), need(1).float || need(2).float);
    case 'Cast': {
      const a = need(0);
      const to = ctx.attrInt('to', DT.FLOAT);
      if (fromIntTo(to)) return { dims: a.dims, float: true, data: Float32Array.from(a.data), sym: a.sym };
      const conv = to === DT.BOOL ? (v: number) => (v ? 1 : 0) : Math.trunc;
      return { dims: a.dims, float: false, data: Float64Array.from(a.data, conv), sym: a.sym };
    }
    case 'Reshape': {
      const a = need(0);
      const target = knownValues(need(1), `Reshape '${ctx.name}' target shape`);
      return withDims(a, resolveReshape(a.dims, target, ctx.attrInt('allowzero', 0) === 1));
    }
    case 'Flatten': {
      const a = need(0);
      const r = a.dims.length;
      let axis = ctx.attrInt('axis', 1);
      if (axis < 0) axis += r;
      return withDims(a, [numel(a.dims.slice(0, axis)), numel(a.dims.slice(axis))]);
    }
    case 'Transpose':
      return transpose(need(0), ctx.attrInts('perm'));
    case 'Squeeze':
    case 'Unsqueeze': {
      const a = need(0);
      const axes = inputs[1] ? knownValues(inputs[1], `${opType} axes`) : (ctx.attrInts('axes') ?? []);
      if (opType === 'Squeeze') {
        const r = a.dims.length;
        const drop = new Set(axes.length ? axes.map((v) => (v < 0 ? v + r : v)) : a.dims.flatMap((d, i) => (d === 1 ? [i] : [])));
        return withDims(
          a,
          a.dims.filter((_, i) => !drop.has(i)),
        );
      }
      const outRank = a.dims.length + axes.length;
      const ins = new Set(axes.map((v) => (v < 0 ? v + outRank : v)));
      const dims: number[] = [];
      let k = 0;
      for (let i = 0; i < outRank; i++) dims.push(ins.has(i) ? 1 : a.dims[k++]);
      return withDims(a, dims);
    }
    case 'Concat':
      return concat(
        inputs.filter((t): t is ConstTensor => t !== undefined && !(t.dims.length === 1 && t.dims[0] === 0)),
        ctx.attrInt('axis', 0),
      );
    case 'Gather':
      return gather(need(0), need(1), ctx.attrInt('axis', 0));
    case 'Slice': {
      const a = need(0);
      let starts: number[];
      let ends: number[];
      let axes: number[];
      let steps: number[];
      if (ctx.opset < 10) {
        starts = ctx.attrInts('starts') ?? [];
        ends = ctx.attrInts('ends') ?? [];
        axes = ctx.attrInts('axes') ?? starts.map((_, i) => i);
        steps = starts.map(() => 1);
      } else {
        starts = knownValues(need(1), 'Slice starts');
        ends = knownValues(need(2), 'Slice ends');
        axes = inputs[3] ? knownValues(inputs[3], 'Slice axes') : starts.map((_, i) => i);
        steps = inputs[4] ? knownValues(inputs[4], 'Slice steps') : starts.map(() => 1);
      }
      return slice(a, starts, ends, axes, steps);
    }
    case 'Shape': {
      const a = need(0);
      const r = a.dims.length;
      let start = ctx.attrInt('start', 0);
      let end = ctx.attrInt('end', r);
      if (start < 0) start += r;
      if (end < 0) end += r;
      return intTensor(a.dims.slice(Math.max(0, start), Math.min(r, end)));
    }
    case 'Size':
      return intTensor([numel(need(0).dims)], []);
    case 'ConstantOfShape': {
      const dims = knownValues(need(0), `ConstantOfShape '${ctx.name}' shape`);
      const v = ctx.attrTensor('value') ?? { dims: [1], float: true, data: new Float32Array(1) };
      const n = numel(dims);
      const data = v.float ? new Float32Array(n).fill(v.data[0]) : new Float64Array(n).fill(v.data[0]);
      return { dims, float: v.float, data };
    }
    case 'Expand':
      return expand(need(0), knownValues(need(1), `Expand '${ctx.name}' shape`));
    case 'Range': {
      const [s, l, d] = [0, 1, 2].map((i) => knownValues(need(i), 'Range')[0]);
      const n = Math.max(Math.ceil((l - s) / d), 0);
      const vals = Array.from({ length: n }, (_, i) => s + i * d);
      const float = need(0).float;
      return float ? { dims: [n], float, data: Float32Array.from(vals) } : intTensor(vals);
    }
    default:
      throw unimplemented(`constant folding of ${opType} (node '${ctx.name}')`);
  }
}
