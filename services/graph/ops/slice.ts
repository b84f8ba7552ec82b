/** Strided slice of per-sample axes (resolved: 0 <= start < dim, end = start + count·step). */
import { stridedSliceOf } from '../../engines/tfjs/tensor-ops';
import type { Shape } from '../ir';
import type { OnnxBuilder } from '../onnx-builder';
import { BATCH, KNOWN, knownValues, resolveSlice } from '../onnx-const-eval';
import type { OpOf } from './op';
import { defineOp } from './op';

type SliceOp = OpOf<'slice'>;

function sliceShape(op: SliceOp, x: Shape): Shape {
  const out = [...x];
  op.axes.forEach((a, i) => {
    out[a] = Math.max(0, Math.ceil((op.ends[i]! - op.starts[i]!) / op.steps[i]!));
  });
  return out;
}

/** The gradient of a slice: gy scattered back into zeros of the input's shape (reversed, interleaved, padded). */
function sliceBackward(b: OnnxBuilder, op: SliceOp, gy: string, inShape: Shape): string {
  let out = gy;
  const cur = [...sliceShape(op, inShape)];
  op.axes.forEach((axis, i) => {
    const a = axis + 1; // with the batch dimension
    let start = op.starts[i]!;
    let step = op.steps[i]!;
    const count = cur[axis]!;
    if (step < 0) {
      out = b.node('Slice', [out, b.ints('s', [-1]), b.ints('e', [Number.MIN_SAFE_INTEGER]), b.ints('a', [a]), b.ints('st', [-1])]);
      start = start + (count - 1) * step;
      step = -step;
    }
    if (step > 1) {
      // interleave step-1 zeros after every element along the axis
      const shp = [-1, ...cur];
      shp.splice(a + 1, 0, 1);
      const expanded = b.node('Reshape', [out, b.ints('shape', shp)]);
      const padsArr = new Array<number>(2 * shp.length).fill(0);
      padsArr[shp.length + a + 1] = step - 1;
      const padded = b.node('Pad', [expanded, b.ints('pads', padsArr)]);
      const merged = [-1, ...cur];
      merged[a] = count * step;
      out = b.node('Reshape', [padded, b.ints('shape', merged)]);
    }
    const len = count * step;
    const endPad = inShape[axis]! - start - len;
    const padsArr = new Array<number>(2 * (inShape.length + 1)).fill(0);
    padsArr[a] = start;
    padsArr[inShape.length + 1 + a] = Math.max(endPad, 0);
    out = b.node('Pad', [out, b.ints('pads', padsArr)]);
    if (endPad < 0) {
      out = b.node('Slice', [out, b.ints('s', [0]), b.ints('e', [inShape[axis]!]), b.ints('a', [a])]);
    }
    cur[axis] = inShape[axis]!;
  });
  return out;
}

export const slice = defineOp({
  op: 'slice',
  summary: 'strided slice of per-sample axes',
  shape: (op, [x]) => sliceShape(op, x!),
  emitOnnx: (op, cx, _n, [x], o) => {
    const b = cx.b;
    const ends = op.ends.map((e, i) => (op.steps[i]! < 0 && e < 0 ? Number.MIN_SAFE_INTEGER : e));
    return b.node(
      'Slice',
      [x!, b.ints('starts', op.starts), b.ints('ends', ends), b.ints('axes', op.axes.map((a) => a + 1)), b.ints('steps', op.steps)],
      {},
      o,
    );
  },
  tfjs: (op, [x], cx) => stridedSliceOf(x!, cx.inShape(), op),
  backward: (op, cx) => cx.give(0, sliceBackward(cx.b, op, cx.gy, cx.inShape())),
  onnx: {
    Slice: (cx) => {
      const x = cx.dataIn(0);
      const shape = cx.shapeOf(x);
      const r = shape.length + 1;
      let starts: number[];
      let ends: number[];
      let axes: number[];
      let steps: number[];
      let endsSym: Uint8Array | undefined;
      if (cx.opset < 10) {
        starts = cx.attrs.ints('starts') ?? [];
        ends = cx.attrs.ints('ends') ?? [];
        axes = cx.attrs.ints('axes') ?? starts.map((_, i) => i);
        steps = starts.map(() => 1);
      } else {
        const s = cx.constIn(1, 'starts');
        const e = cx.constIn(2, 'ends');
        if (!s || !e) return cx.fail('needs starts and ends');
        starts = knownValues(s, 'starts');
        endsSym = e.sym;
        ends = Array.from(e.data);
        const a = cx.constIn(3, 'axes');
        const st = cx.constIn(4, 'steps');
        axes = a ? knownValues(a, 'axes') : starts.map((_, i) => i);
        steps = st ? knownValues(st, 'steps') : starts.map(() => 1);
      }
      const out: SliceOp = { op: 'slice', starts: [], ends: [], axes: [], steps: [] };
      axes.forEach((ax, i) => {
        const a = ax < 0 ? ax + r : ax;
        if (a === 0) {
          const wholeBatch = starts[i] === 0 && steps[i] === 1 && (endsSym?.[i] === BATCH || ends[i]! >= 2 ** 31 - 1);
          if (!wholeBatch) return cx.fail('slices the batch dimension');
          return;
        }
        if (endsSym && endsSym[i] !== KNOWN) return cx.fail('ends depend on the batch size');
        const dim = shape[a - 1]!;
        const s = resolveSlice(dim, starts[i]!, ends[i]!, steps[i]!);
        if (s.count === 0) return cx.fail('the slice is empty');
        if (s.step === 1 && s.start === 0 && s.count === dim) return;
        out.starts.push(s.start);
        out.ends.push(s.start + s.count * s.step);
        out.axes.push(a - 1);
        out.steps.push(s.step);
      });
      if (out.axes.length === 0) return cx.alias();
      cx.bindOut(cx.emit(out, [x]));
    },
  },
});
