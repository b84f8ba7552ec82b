/**
 * Pass `flipped-conv`: a stride-1 conv's input gradient as a Conv with the weights transposed and spatially
 * flipped, instead of a ConvTranspose. Applies to stride-1 convs with 8 or more input channels whose padding
 * is at most dilation·(kernel-1) (fewer input channels: ConvTranspose measured faster on ORT CPU).
 */
import type { ConvOp, Shape } from '../ir';
import type { BackwardContext } from './context';

export const flippedConvPass = {
  name: 'flipped-conv',
  summary: 'stride-1 conv backward as a Conv with flipped, transposed weights (instead of ConvTranspose)',
} as const;

/** The padding of the flipped conv: dilation·(kernel-1) minus the forward padding, per side. */
export function flippedPads(op: ConvOp): number[] {
  const [kh, kw] = op.kernel;
  const [dh, dw] = op.dilations;
  const [pt, pl, pb, pr] = op.pads;
  return [dh * (kh - 1) - pt, dw * (kw - 1) - pl, dh * (kh - 1) - pb, dw * (kw - 1) - pr];
}

/** Whether the flipped conv computes this conv's input gradient (stride 1, padding within the kernel span). */
export function flippable(op: ConvOp): boolean {
  return op.strides[0] === 1 && op.strides[1] === 1 && flippedPads(op).every((p) => p >= 0);
}

export function flippedConvApplies(op: ConvOp, inShape: Shape): boolean {
  return flippable(op) && inShape[0] >= 8;
}

/** W'[g·Cin/g + i, o, a, c] = W[g·Cout/g + o, i, kh-1-a, kw-1-c], as an initializer. */
export function flippedWeight(ctx: BackwardContext, name: string, group: number): string {
  const w = ctx.em.weightOf(name);
  const [cout, cinG, kh, kw] = w.shape;
  const coutG = cout / group;
  const out = new Float32Array(w.data.length);
  for (let gi = 0; gi < group; gi++)
    for (let i = 0; i < cinG; i++)
      for (let o = 0; o < coutG; o++)
        for (let a = 0; a < kh; a++)
          for (let c = 0; c < kw; c++) {
            const src = (((gi * coutG + o) * cinG + i) * kh + (kh - 1 - a)) * kw + (kw - 1 - c);
            const dst = (((gi * cinG + i) * coutG + o) * kh + a) * kw + c;
            out[dst] = w.data[src];
          }
  return ctx.b.floatInit(`flipped:${name}`, [group * cinG, coutG, kh, kw], out);
}

/** gx = Conv(gy, flipped W) for a [B, Cout, Ho, Wo] gradient. */
export function flippedConvBackward(ctx: BackwardContext, op: ConvOp, gy: string): string {
  return ctx.b.node('Conv', [gy, flippedWeight(ctx, op.weight, op.group)], {
    kernel_shape: { ints: op.kernel },
    pads: { ints: flippedPads(op) },
    dilations: { ints: op.dilations },
    group: { i: op.group },
  });
}
