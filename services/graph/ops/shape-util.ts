/** Shape arithmetic shared by the op modules' shape rules (no dependence on the registry). */
import type { Pads4, Shape } from '../ir';
import { invalidArgument } from '../../errors';

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

/** Numpy broadcasting of two per-sample shapes. */
export function broadcastShapes(a: Shape, b: Shape, what: string): Shape {
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

/** Output [H, W] of a 2-D window op on a [C, H, W] input. */
export function windowSpatial(
  input: Shape,
  what: string,
  kernel: [number, number],
  strides: [number, number],
  pads: Pads4,
  dil: [number, number],
  ceil: boolean,
): [number, number] {
  if (input.length !== 3) throw invalidArgument(`${what}: expects a [C,H,W] input, got [${input}]`);
  const h = windowOutput(input[1]!, kernel[0], strides[0], pads[0], pads[2], dil[0], ceil);
  const w = windowOutput(input[2]!, kernel[1], strides[1], pads[1], pads[3], dil[1], ceil);
  if (h <= 0 || w <= 0) throw invalidArgument(`${what}: output would be empty for input [${input}]`);
  return [h, w];
}
