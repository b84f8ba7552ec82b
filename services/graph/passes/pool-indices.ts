/**
 * Pass `pool-indices`: max-pool routing from MaxPool's own `Indices` output, the arg-max one-hot as a
 * ScatterElements of ones and the backward as a ScatterElements-add onto the arg-max positions. Without it the
 * plain graph routes through the pool's window taps (../max-pool-taps.ts), which needs no `Indices` output:
 * onnxruntime's WebGPU MaxPool has none ("The Indices output is not supported yet"), so GPU devices run plain.
 */
import type { BackwardContext } from './context';

export const poolIndicesPass = {
  name: 'pool-indices',
  summary: "max-pool arg-max from MaxPool's Indices output (ScatterElements one-hot and scatter-add backward)",
} as const;

/** One-hot [1, C, H, W] of each window's arg-max from the pool's flat NCHW `indices` [1, C, Ho, Wo]. */
export function oneHotFromIndices(ctx: Pick<BackwardContext, 'b'>, indices: string, inShape: number[], outShape: number[]): string {
  const b = ctx.b;
  const [c, h, w] = inShape as [number, number, number];
  const [, ho, wo] = outShape as [number, number, number];
  const idx = b.node('Reshape', [indices, b.ints('shape', [1, c * ho * wo])]);
  const zeros = b.floatInit('zeros', [1, c * h * w], new Float32Array(c * h * w));
  const ones = b.floatInit('ones', [1, c * ho * wo], new Float32Array(c * ho * wo).fill(1));
  const onehot = b.node('ScatterElements', [zeros, idx, ones], { axis: { i: 1 } });
  return b.node('Reshape', [onehot, b.ints('shape', [1, c, h, w])]);
}

/** The backward of a max pool in general (overlapping or padded windows): gy [B, C, Ho, Wo] scatter-added onto the arg-max positions. */
export function scatterBackward(ctx: Pick<BackwardContext, 'b'>, indices: string, gy: string, inShape: number[], outShape: number[]): string {
  const b = ctx.b;
  const [c, h, w] = inShape as [number, number, number];
  const [, ho, wo] = outShape as [number, number, number];
  const flatIdx = b.node('Reshape', [indices, b.ints('shape', [1, c * ho * wo])]);
  const rows = b.node('Slice', [b.node('Shape', [gy]), b.ints('s', [0]), b.ints('e', [1])]);
  const zeros = b.node('ConstantOfShape', [b.node('Concat', [rows, b.ints('n', [c * h * w])], { axis: { i: 0 } })]);
  const idxB = b.node('Expand', [flatIdx, b.node('Concat', [rows, b.ints('n', [c * ho * wo])], { axis: { i: 0 } })]);
  const g2 = b.node('Reshape', [gy, b.ints('shape', [-1, c * ho * wo])]);
  const sc = b.node('ScatterElements', [zeros, idxB, g2], { axis: { i: 1 }, reduction: { s: 'add' } });
  return b.node('Reshape', [sc, b.ints('shape', [-1, c, h, w])]);
}
