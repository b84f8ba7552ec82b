/** Concatenation along a per-sample axis (0 = channels). */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument } from '../../errors';
import { tensorAxis } from '../../engines/tfjs/layout';
import { defineOp } from './op';

export const concat = defineOp({
  op: 'concat',
  summary: 'concatenation along a per-sample axis',
  shape: (op, inputs) => {
    const out = [...inputs[0]!];
    out[op.axis] = inputs.reduce((s, sh) => s + sh[op.axis]!, 0);
    return out;
  },
  emitOnnx: (op, cx, _n, inputs, o) => cx.b.node('Concat', inputs, { axis: { i: op.axis + 1 } }, o),
  tfjs: (op, ins, cx) => tf.concat(ins, tensorAxis(cx.inShape(), op.axis)),
  backward: (op, cx) => {
    const sizes = cx.node.inputs.map((_, k) => cx.inShape(k)[op.axis]!);
    const parts = cx.b.nodeN('Split', [cx.gy, cx.b.ints('split', sizes)], sizes.length, { axis: { i: op.axis + 1 } });
    parts.forEach((p, k) => cx.give(k, p));
  },
  onnx: {
    Concat: (cx) => {
      const idx = [...Array(cx.inputCount).keys()].filter((i) => cx.inputName(i) !== '');
      const firstData = idx.map((i) => cx.dataOf(i)).find((v) => v !== undefined)!;
      const r = cx.shapeOf(firstData).length + 1;
      let axis = cx.attrs.int('axis', 0);
      if (axis < 0) axis += r;
      if (axis <= 0 || axis >= r) return cx.fail(`axis ${cx.attrs.int('axis', 0)} (concatenation along the batch dimension)`);
      const xs = cx.shapeOf(firstData);
      const values = idx.map((i, k) => {
        const v = cx.dataOf(i);
        if (v !== undefined) return v;
        const c = cx.constIn(i, 'a constant input')!;
        if (c.dims.length === r && c.dims[0] !== 1) return cx.fail(`constant input ${k} has a batch dimension of ${c.dims[0]}`);
        return cx.constantValue(c, c.dims.length === r ? c.dims.slice(1) : c.dims, `/const${k}`);
      });
      for (const v of values) {
        const s = cx.shapeOf(v);
        if (s.length !== xs.length || s.some((d, i) => i !== axis - 1 && d !== xs[i])) return cx.fail(`input shapes [${s}] and [${xs}] do not concatenate on axis ${axis}`);
      }
      cx.bindOut(values.length === 1 ? values[0]! : cx.emit({ op: 'concat', axis: axis - 1 }, values));
    },
  },
  kerasLayers: {
    Concatenate: (cx) => {
      const ins = cx.inputs;
      if (ins.length < 2) throw invalidArgument(`layer ${cx.name} (Concatenate) needs at least two inputs`);
      const rank = ins[0]!.shape.length;
      let kAxis = Number(cx.config.axis ?? -1);
      if (kAxis < 0) kAxis += rank + 1; // Keras axes count the batch
      const axis = rank === 3 ? [NaN, 1, 2, 0][kAxis]! : kAxis - 1;
      if (!(axis >= 0 && axis < rank)) throw invalidArgument(`layer ${cx.name} (Concatenate): bad axis ${String(cx.config.axis)}`);
      const shape = [...ins[0]!.shape];
      shape[axis] = 0;
      for (const v of ins) {
        if (v.shape.length !== rank || v.shape.some((d, i) => i !== axis && d !== ins[0]!.shape[i])) {
          throw invalidArgument(`layer ${cx.name} (Concatenate): incompatible input shapes`);
        }
        shape[axis]! += v.shape[axis]!;
      }
      let perm: Int32Array | null = null;
      if (rank === 1 && ins.some((v) => v.perm)) {
        perm = new Int32Array(shape[0]!);
        let off = 0;
        for (const v of ins) {
          for (let i = 0; i < v.shape[0]!; i++) perm[off + i] = off + (v.perm ? v.perm[i]! : i);
          off += v.shape[0]!;
        }
      }
      const name = cx.addNode(cx.name, { op: 'concat', axis }, ins.map((v) => v.name), shape);
      return { name, shape, perm };
    },
  },
});
