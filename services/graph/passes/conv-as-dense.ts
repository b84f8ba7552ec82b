/**
 * Pass `conv-as-dense`: a conv on a tiny map (no more multiply-adds as a matrix than as a conv, e.g. VGG's
 * 2×2 layers) written as one [Cout·Ho·Wo, Cin·H·W] matrix (../conv-as-dense.ts): the forward as a Gemm
 * (../ir-to-onnx.ts) and the backward as one MatMul gy · D, sharing one initializer.
 */
import type { IrNode } from '../ir';
import type { BackwardContext } from './context';

export { convAsDense as convAsDenseApplies } from '../conv-as-dense';

export const convAsDensePass = {
  name: 'conv-as-dense',
  summary: 'convs on tiny maps as one dense matrix, forward (Gemm) and backward (MatMul)',
} as const;

/** gx = gy · D for a [B, Cout, Ho, Wo] gradient. */
export function denseConvBackward(ctx: BackwardContext, n: IrNode, gy: string): string {
  const b = ctx.b;
  const inShape = ctx.shape(n.inputs[0]);
  const [cout, ho, wo] = ctx.shape(n.output);
  const flat = b.node('Reshape', [ctx.batch(gy), b.ints('shape', [-1, cout * ho * wo])]);
  const gx = b.node('MatMul', [flat, ctx.em.denseConvInit(n)]);
  return b.node('Reshape', [gx, b.ints('shape', [-1, ...inShape])]);
}
