/** Constant padding of the per-sample axes (negative pads crop). */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument } from '../../errors';
import { tensorPaddings } from '../../engines/tfjs/tensor-ops';
import type { Shape } from '../ir';
import type { OnnxBuilder } from '../onnx-builder';
import { knownValues } from '../onnx-const-eval';
import { defineOp } from './op';

/** The gradient of a pad: the inner window of gy (grown by zeros where the pad cropped). */
function padBackward(b: OnnxBuilder, pads: number[], gy: string, inShape: Shape): string {
  const r = inShape.length;
  let out = gy;
  const grow = pads.map((p) => Math.max(-p, 0));
  if (grow.some((p) => p > 0)) {
    out = b.node('Pad', [out, b.ints('pads', [0, ...grow.slice(0, r), 0, ...grow.slice(r)])]);
  }
  const starts = pads.slice(0, r).map((p) => Math.max(p, 0));
  return b.node('Slice', [
    out,
    b.ints('starts', starts),
    b.ints('ends', starts.map((s, i) => s + inShape[i]!)),
    b.ints('axes', inShape.map((_, i) => i + 1)),
  ]);
}

export const pad = defineOp({
  op: 'pad',
  summary: 'constant padding, per-sample [begin.., end..] (negative crops)',
  shape: (op, [x]) => x!.map((d, i) => d + op.pads[i]! + op.pads[i + x!.length]!),
  emitOnnx: (op, cx, _n, [x], o) => {
    const r = op.pads.length / 2;
    const pads = [0, ...op.pads.slice(0, r), 0, ...op.pads.slice(r)];
    return cx.b.node('Pad', [x!, cx.b.ints('pads', pads), cx.b.floats('pad_value', [op.value], [])], {}, o);
  },
  tfjs: (op, [x], cx) => {
    // Negative pads crop; positive ones pad with the value.
    const paddings = tensorPaddings(cx.inShape(), op.pads);
    const begin = paddings.map(([b]) => Math.max(0, -b));
    const size = x!.shape.map((d, t) => d - begin[t]! - Math.max(0, -paddings[t]![1]));
    const cropped = paddings.some(([b, e]) => b < 0 || e < 0) ? tf.slice(x!, begin, size) : x!;
    return tf.pad(cropped, paddings.map(([b, e]) => [Math.max(0, b), Math.max(0, e)] as [number, number]), op.value);
  },
  backward: (op, cx) => cx.give(0, padBackward(cx.b, op.pads, cx.gy, cx.inShape())),
  onnx: {
    Pad: (cx) => {
      const x = cx.dataIn(0);
      const r = cx.shapeOf(x).length + 1;
      let pads: number[];
      let value = 0;
      const mode = cx.attrs.string('mode', 'constant');
      if (cx.opset < 11) {
        pads = cx.attrs.ints('pads') ?? [];
        value = cx.attrs.float('value', 0);
      } else {
        const p = cx.constIn(1, 'pads');
        if (!p) return cx.fail('needs pads');
        pads = knownValues(p, 'pads');
        const v = cx.constIn(2, 'constant_value');
        if (v) value = v.data[0]!;
        const ax = cx.constIn(3, 'axes');
        if (ax) {
          const axes = knownValues(ax, 'axes').map((a) => (a < 0 ? a + r : a));
          const full = new Array<number>(2 * r).fill(0);
          axes.forEach((a, i) => {
            full[a] = pads[i]!;
            full[a + r] = pads[i + axes.length]!;
          });
          pads = full;
        }
      }
      if (pads.length !== 2 * r) return cx.fail(`pads [${pads}] do not match rank ${r}`);
      if (pads.every((p) => p === 0)) return cx.alias();
      if (mode !== 'constant') return cx.fail(`mode '${mode}' (only constant padding is supported)`);
      if (pads[0] !== 0 || pads[r] !== 0) return cx.fail('pads the batch dimension');
      const per = [...pads.slice(1, r), ...pads.slice(r + 1)];
      cx.bindOut(cx.emit({ op: 'pad', pads: per, value }, [x]));
    },
  },
  kerasLayers: {
    ZeroPadding2D: (cx) => {
      const x = cx.one();
      const [c, h, w] = cx.requireMap(x);
      const p = cx.config.padding ?? 1;
      let t: number, b: number, l: number, r: number;
      if (typeof p === 'number') [t, b, l, r] = [p, p, p, p];
      else if (Array.isArray(p) && p.length === 2 && p.every((q) => typeof q === 'number')) {
        [t, b, l, r] = [Number(p[0]), Number(p[0]), Number(p[1]), Number(p[1])];
      } else if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2)) {
        const q = p as number[][];
        [t, b, l, r] = [q[0]![0]!, q[0]![1]!, q[1]![0]!, q[1]![1]!];
      } else throw invalidArgument(`layer ${cx.name} (ZeroPadding2D): bad padding ${JSON.stringify(p)}`);
      const shape = [c, h + t + b, w + l + r];
      const name = cx.addNode(cx.name, { op: 'pad', pads: [0, t, l, 0, b, r], value: 0 }, [x.name], shape);
      return { name, shape, perm: null };
    },
  },
  // Zero padding of the spatial axes only keeps a zero channel zero.
  traits: { zeroPreserving: (op) => op.op === 'pad' && op.value === 0 && op.pads[0] === 0 && op.pads[op.pads.length / 2] === 0 },
});
