/**
 * Elementwise sum of two values (same shape, or a [C,1,1] / scalar-like second input broadcast). ONNX
 * Add/Sub with a constant operand are read by the importer's constant folding (as affine or add of a
 * constant); Sum and Keras Add are read here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument, unimplemented } from '../../errors';
import { tfjsOperands, unbroadcast } from './broadcasting';
import { defineOp } from './op';
import { broadcastShapes } from './shape-util';

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const samePerm = (a: Int32Array | null, b: Int32Array | null): boolean =>
  !a || !b ? a === b : a.length === b.length && a.every((v, i) => v === b[i]);

export const add = defineOp({
  op: 'add',
  summary: 'x + y (numpy broadcasting of the second input)',
  shape: (_op, [a, b], cx) => broadcastShapes(a!, b!, cx.what),
  emitOnnx: (_op, cx, _n, inputs, o) => cx.b.node('Add', inputs, {}, o),
  tfjs: (_op, ins, cx) => tf.add(...tfjsOperands(ins, cx)),
  backward: (_op, cx) => cx.node.inputs.forEach((_, k) => cx.give(k, unbroadcast(cx.b, cx.gy, cx.inShape(k), cx.outShape()))),
  onnx: {
    Sum: (cx) => {
      const values = [...Array(cx.inputCount).keys()].filter((i) => cx.inputName(i) !== '').map((i) => cx.dataOf(i));
      if (values.some((v) => v === undefined)) return cx.fail('constant operands');
      let acc = values[0]!;
      for (let k = 1; k < values.length; k++) acc = cx.emit({ op: 'add' }, [acc, values[k]!], `/${k}`);
      cx.bindOut(acc);
    },
  },
  kerasLayers: {
    Add: (cx) => {
      const ins = cx.inputs;
      if (ins.length < 2) throw invalidArgument(`layer ${cx.name} (Add) needs at least two inputs`);
      let acc = ins[0]!;
      for (let i = 1; i < ins.length; i++) {
        const y = ins[i]!;
        if (!sameShape(acc.shape, y.shape)) {
          throw unimplemented(`layer ${cx.name} (Add): inputs of shapes ${JSON.stringify(acc.shape)} and ${JSON.stringify(y.shape)}`);
        }
        if (!samePerm(acc.perm, y.perm)) throw unimplemented(`layer ${cx.name} (Add): inputs flattened in different orders`);
        const name = cx.addNode(i === ins.length - 1 ? cx.name : `${cx.name}/${i}`, { op: 'add' }, [acc.name, y.name], acc.shape);
        acc = { name, shape: acc.shape, perm: acc.perm };
      }
      return acc;
    },
  },
});
