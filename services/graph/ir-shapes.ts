/**
 * Static per-sample shape inference for IR ops (shapes without the batch dimension); each op's rule is in
 * its module (./ops).
 */
import type { IrGraph, IrOp, Shape, WeightTensor } from './ir';
import { invalidArgument } from '../errors';
import { opDef } from './ops';

export { shapeSize, windowOutput } from './ops/shape-util';

/** The per-sample output shape of `op` applied to inputs of the given shapes (the op module's rule). */
export function inferShape(op: IrOp, inputs: Shape[], weights: Map<string, WeightTensor>, what: string): Shape {
  const weight = (name: string): WeightTensor => {
    const w = weights.get(name);
    if (!w) throw invalidArgument(`${what}: weight '${name}' is missing`);
    return w;
  };
  return opDef(op.op, what).shape(op as never, inputs, { weight, what });
}

/** Recomputes `g.shapes` for every node from the input shape (checks the graph is consistent). */
export function inferGraphShapes(g: IrGraph): Map<string, Shape> {
  const shapes = new Map<string, Shape>([[g.input.name, [...g.input.shape]]]);
  for (const n of g.nodes) {
    const ins = n.inputs.map((v) => {
      const s = shapes.get(v);
      if (!s) throw invalidArgument(`node '${n.name}' reads '${v}' before it is computed`);
      return s;
    });
    shapes.set(n.output, inferShape(n.op, ins, g.weights, `node '${n.name}'`));
  }
  return shapes;
}
