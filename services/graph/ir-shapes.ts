/**
 * Static per-sample shape inference for IR ops (shapes without the batch dimension).
 */
import type { IrGraph, IrOp, Pads4, Shape, WeightTensor } from './ir';
import { invalidArgument } from '../errors';

export const shapeSize = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Output length of a window op along one axis (floor, or ceil without starting a window in the end pad). */
export function windowOutput(
  size: number,
  kernel: number,
  stride: number,
  padBegin: number,
  padEnd: number,
  dilation: number,
  ceil: boolean,
): number {
  const span = size + padBegin + padEnd - dilation * (kernel - 1) - 1;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceil && (out - 1) * stride >= size + padBegin) out -= 1;
  return out;
}

function broadcast(a: Shape, b: Shape, what: string): Shape {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw invalidArgument(`${what}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

function spatial(
  input: Shape,
  what: string,
  kernel: [number, number],
  strides: [number, number],
  pads: Pads4,
  dil: [number, number],
  ceil: boolean,
): [number, number] {
  if (input.length !== 3) throw invalidArgument(`${what}: expects a [C,H,W] input, got [${input}]`);
  const h = windowOutput(input[1], kernel[0], strides[0], pads[0], pads[2], dil[0], ceil);
  const w = windowOutput(input[2], kernel[1], strides[1], pads[1], pads[3], dil[1], ceil);
  if (h <= 0 || w <= 0) throw invalidArgument(`${what}: output would be empty for input [${input}]`);
  return [h, w];
}

/** The per-sample output shape of `op` applied to inputs of the given shapes. */
export function inferShape(op: IrOp, inputs: Shape[], weights: Map<string, WeightTensor>, what: string): Shape {
  const x = inputs[0];
  const weight = (name: string): WeightTensor => {
    const w = weights.get(name);
    if (!w) throw invalidArgument(`${what}: weight '${name}' is missing`);
    return w;
  };
  switch (op.op) {
    case 'conv': {
      const w = weight(op.weight);
      if (x[0] !== w.shape[1] * op.group) {
        throw invalidArgument(`${what}: input has ${x[0]} channels, weight [${w.shape}] with group ${op.group} expects ${w.shape[1] * op.group}`);
      }
      return [w.shape[0], ...spatial(x, what, op.kernel, op.strides, op.pads, op.dilations, false)];
    }
    case 'max_pool':
    case 'avg_pool':
      return [x[0], ...spatial(x, what, op.kernel, op.strides, op.pads, [1, 1], op.ceilMode)];
    case 'global_avg_pool':
    case 'global_max_pool':
      if (x.length !== 3) throw invalidArgument(`${what}: expects a [C,H,W] input, got [${x}]`);
      return [x[0], 1, 1];
    case 'dense': {
      const w = weight(op.weight);
      if (x.length !== 1 || x[0] !== w.shape[1]) throw invalidArgument(`${what}: input [${x}] does not match weight [${w.shape}]`);
      return [w.shape[0]];
    }
    case 'flatten':
      return [shapeSize(x)];
    case 'reshape':
      if (shapeSize(op.shape) !== shapeSize(x)) throw invalidArgument(`${what}: cannot reshape [${x}] to [${op.shape}]`);
      return [...op.shape];
    case 'add':
    case 'mul':
      return broadcast(x, inputs[1], what);
    case 'concat': {
      const out = [...x];
      out[op.axis] = inputs.reduce((s, sh) => s + sh[op.axis], 0);
      return out;
    }
    case 'pad': {
      const r = x.length;
      return x.map((d, i) => d + op.pads[i] + op.pads[i + r]);
    }
    case 'slice': {
      const out = [...x];
      op.axes.forEach((a, i) => {
        out[a] = Math.max(0, Math.ceil((op.ends[i] - op.starts[i]) / op.steps[i]));
      });
      return out;
    }
    case 'constant':
      return [...weight(op.value).shape];
    case 'affine': {
      const s = weight(op.scale);
      if (s.data.length !== x[0]) throw invalidArgument(`${what}: ${s.data.length} scales for ${x[0]} channels`);
      return [...x];
    }
    case 'relu':
    case 'leaky_relu':
    case 'clip':
    case 'sigmoid':
    case 'tanh':
    case 'identity':
      return [...x];
  }
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
