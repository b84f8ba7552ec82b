/** Clip: min(max(x, min), max); ReLU6 = clip(0, 6). ONNX Clip(0, ∞) is read as a ReLU. */
import * as tf from '@tensorflow/tfjs-core';
import type { IrOp } from '../ir';
import { defineOp, gatedBackward, sameShape } from './op';

export const clip = defineOp({
  op: 'clip',
  summary: 'min(max(x, min), max)',
  shape: sameShape,
  emitOnnx: (op, cx, _n, [x], o) => {
    const b = cx.b;
    const lo = Number.isFinite(op.min) ? b.floats('clip_min', [op.min], []) : '';
    const hi = Number.isFinite(op.max) ? b.floats('clip_max', [op.max], []) : '';
    return b.node('Clip', hi ? [x!, lo, hi] : lo ? [x!, lo] : [x!], {}, o);
  },
  tfjs: (op, [x]) => tf.clipByValue(x!, op.min, op.max),
  // derivative [min < x < max]
  backward: (op, cx) => {
    const b = cx.b;
    const x = cx.x();
    const parts: string[] = [];
    if (Number.isFinite(op.min)) parts.push(b.node('Greater', [x, b.floats('lo', [op.min], [])]));
    if (Number.isFinite(op.max)) parts.push(b.node('Less', [x, b.floats('hi', [op.max], [])]));
    if (parts.length === 0) return cx.give(0, cx.rule === 'gradient' ? cx.gy : b.node('Relu', [cx.gy]));
    const inside = parts.length === 2 ? b.node('And', parts) : parts[0]!;
    gatedBackward(cx, b.node('Cast', [inside], { to: { i: 1 } }));
  },
  onnx: {
    Clip: (cx) => {
      const x = cx.dataIn(0);
      let min: number;
      let max: number;
      if (cx.opset < 11) {
        min = cx.attrs.float('min', -Infinity);
        max = cx.attrs.float('max', Infinity);
      } else {
        const lo = cx.constIn(1, 'min');
        const hi = cx.constIn(2, 'max');
        min = lo ? lo.data[0]! : -Infinity;
        max = hi ? hi.data[0]! : Infinity;
      }
      if (min <= -3.4e38) min = -Infinity;
      if (max >= 3.4e38) max = Infinity;
      const op: IrOp = min === 0 && max === Infinity ? { op: 'relu' } : { op: 'clip', min, max };
      cx.bindOut(cx.emit(op, [x]));
    },
  },
  kerasActivations: { relu6: () => ({ op: 'clip', min: 0, max: 6 }) },
  traits: {
    activation: true,
    zeroBelowZero: (op) => op.op === 'clip' && op.min === 0,
    zeroPreserving: (op) => op.op === 'clip' && op.min <= 0 && op.max >= 0,
  },
});
