/**
 * Pass `pool-conv-fused`: a tiling max pool's routing (its ReLU folded in) and the backward of the conv
 * before it done as one strided ConvTranspose, for convs with few input channels (an RGB first layer), where
 * the full-resolution gradient between them is mostly memory traffic. The pooled gradient is routed in the
 * pooled resolution onto C·ph·pw channels (one per window position), then a ConvTranspose with stride
 * (ph, pw) and a (ph+kh-1)×(pw+kw-1) kernel, W'[(c, dy, dx), i, dy+a, dx+b] = W[c, i, a, b], maps it to the
 * conv's input: the full-resolution gradient is never formed.
 */
import type { IrNode } from '../ir';
import type { BackwardContext } from './context';

export const poolConvFusedPass = {
  name: 'pool-conv-fused',
  summary: 'tiling max pool + ReLU + a same-padded conv with under 8 input channels backward as one ConvTranspose',
} as const;

/** Whether `pool` (a tiling max pool) and the `conv` feeding it through a ReLU fuse. */
export function poolConvFusedApplies(ctx: Pick<BackwardContext, 'shape'>, pool: IrNode, conv: IrNode): boolean {
  const op = conv.op;
  if (op.op !== 'conv' || op.group !== 1 || pool.op.op !== 'max_pool') return false;
  const [cin, h, w] = ctx.shape(conv.inputs[0]);
  const [, ho, wo] = ctx.shape(conv.output);
  const strideOne = op.strides.every((s) => s === 1) && op.dilations.every((d) => d === 1);
  const [pt, pl, pb, pr] = op.pads;
  const [kh, kw] = op.kernel;
  return cin < 8 && strideOne && h === ho && w === wo && pt + pb === kh - 1 && pl + pr === kw - 1;
}

export function poolConvBackward(ctx: BackwardContext, pool: IrNode, gy: string, relu: IrNode, conv: IrNode): string {
  const b = ctx.b;
  const pop = pool.op;
  const cop = conv.op;
  if (pop.op !== 'max_pool' || cop.op !== 'conv') throw new Error('not a pool after a conv');
  const [c] = ctx.shape(pool.inputs[0]);
  const [, ho, wo] = ctx.shape(pool.output);
  const [cin] = ctx.shape(conv.inputs[0]);
  const [ph, pw] = pop.kernel;
  const [kh, kw] = cop.kernel;
  const win = ph * pw;
  let mask = ctx.argMaxOneHot(pool);
  if (ctx.rule !== 'deconv') mask = b.node('Mul', [mask, ctx.positive(ctx.fwd(relu.inputs[0]))]);
  // [1, C, H, W] -> [1, C, ph·pw, Ho, Wo]
  const m6 = b.node('Reshape', [mask, b.ints('shape', [1, c, ho, ph, wo, pw])]);
  const m5 = b.node('Reshape', [b.node('Transpose', [m6], { perm: { ints: [0, 1, 3, 5, 2, 4] } }), b.ints('shape', [1, c, win, ho, wo])]);
  const g = ctx.rule === 'gradient' ? gy : b.node('Relu', [gy]);
  const routed = b.node('Mul', [b.node('Reshape', [g, b.ints('shape', [-1, c, 1, ho, wo])]), m5]);
  const flat = b.node('Reshape', [routed, b.ints('shape', [-1, c * win, ho, wo])]);
  const w = ctx.em.weightOf(cop.weight);
  const kh2 = ph + kh - 1;
  const kw2 = pw + kw - 1;
  const w2 = new Float32Array(c * win * cin * kh2 * kw2);
  for (let o = 0; o < c; o++)
    for (let dy = 0; dy < ph; dy++)
      for (let dx = 0; dx < pw; dx++)
        for (let i = 0; i < cin; i++)
          for (let a = 0; a < kh; a++)
            for (let bb = 0; bb < kw; bb++) {
              const dst = ((((o * ph + dy) * pw + dx) * cin + i) * kh2 + dy + a) * kw2 + dx + bb;
              w2[dst] = w.data[((o * cin + i) * kh + a) * kw + bb];
            }
  const [pt, pl, pb, pr] = cop.pads;
  return b.node('ConvTranspose', [flat, b.floatInit(`poolconv:${cop.weight}`, [c * win, cin, kh2, kw2], w2)], {
    kernel_shape: { ints: [kh2, kw2] },
    strides: { ints: pop.strides },
    pads: { ints: [pt, pl, pb, pr] },
  });
}
