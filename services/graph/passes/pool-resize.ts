/**
 * Pass `pool-resize`: the backward of a tiling max pool (kernel = stride, no padding, no remainder) as the
 * gradient upsampled by nearest-neighbour Resize times the one-hot of each window's arg-max, with a ReLU
 * whose only reader is the pool folded in (its rule applied to the small gradient, its mask joined to the
 * one-hot), instead of a ScatterElements onto the arg-max positions. In the packed layout (./packed-conv.ts)
 * the upsampling is a grouped ConvTranspose with a ones kernel and the result stays packed.
 */
import type { IrNode } from '../ir';
import type { BackwardContext } from './context';
import { PACKED_MAX_WIDTH, type Packed, type PackedLayout } from './packed-conv';

export const poolResizePass = {
  name: 'pool-resize',
  summary: 'tiling max-pool backward as Resize upsampling times the arg-max one-hot, ReLU folded in',
} as const;

/** A max pool whose windows tile its input exactly (kernel = stride, no padding, no remainder). */
export function isTilingPool(ctx: Pick<BackwardContext, 'shape'>, n: IrNode): boolean {
  const op = n.op;
  if (op.op !== 'max_pool') return false;
  const [, h, w] = ctx.shape(n.inputs[0]);
  const [, ho, wo] = ctx.shape(n.output);
  return (
    op.pads.every((p) => p === 0) &&
    op.kernel[0] === op.strides[0] &&
    op.kernel[1] === op.strides[1] &&
    ho * op.kernel[0] === h &&
    wo * op.kernel[1] === w
  );
}

/**
 * gradient = upsample(gy) · one-hot(arg-max). With `relu` (the ReLU feeding the pool, folded in): the ReLU rule
 * is applied to the small gy and its forward mask joins the one-hot. `packed`: the layout of packed gradients
 * (undefined when packed-conv is off).
 */
export function tilingPoolBackward(ctx: BackwardContext, n: IrNode, gy: string, relu: IrNode | undefined, packed: PackedLayout | undefined): string {
  const b = ctx.b;
  const op = n.op;
  if (op.op !== 'max_pool') throw new Error('not a max pool');
  const [c, h, w] = ctx.shape(n.inputs[0]);
  let p: Packed | undefined = packed?.of(gy);
  if (p && w > PACKED_MAX_WIDTH) {
    gy = ctx.batch(gy);
    p = undefined;
  }
  let mask = ctx.argMaxOneHot(n);
  let g = gy;
  if (relu) {
    if (ctx.rule !== 'gradient') g = b.node('Relu', [gy]);
    if (ctx.rule !== 'deconv') mask = b.node('Mul', [mask, ctx.positive(ctx.fwd(relu.inputs[0]))]);
  }
  const [kh, kw] = op.kernel;
  if (p && packed) {
    // packed [C, Ho, B, Wo+gap] -> upsampled [C, H, B, (Wo+gap)·kw] -> at most one gap column kept
    const flat = b.node('Reshape', [g, b.ints('shape', [1, c, p.h, -1])]);
    const ones = b.floatInit('ones', [c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1));
    const up = b.node('ConvTranspose', [flat, ones], { kernel_shape: { ints: op.kernel }, strides: { ints: op.strides }, group: { i: c } });
    const wide = (p.w + p.gap) * kw;
    const gap = Math.min(p.gap * kw, 1);
    let grid = b.node('Reshape', [up, b.ints('shape', [c, h, -1, wide])]);
    if (w + gap < wide) grid = b.node('Slice', [grid, b.ints('s', [0]), b.ints('e', [w + gap]), b.ints('a', [3])]);
    const q: Packed = { c, h, w, gap, dirty: false };
    return packed.keep(b.node('Mul', [grid, packed.mask(mask, q)]), q);
  }
  // nearest-neighbour upsampling by the window size (exact for tiling windows; cheaper than a grouped
  // ConvTranspose with a ones kernel on per-image maps)
  const up = b.node('Resize', [g, '', b.floats('scales', [1, 1, kh, kw])], {
    mode: { s: 'nearest' },
    coordinate_transformation_mode: { s: 'asymmetric' },
    nearest_mode: { s: 'floor' },
  });
  return b.node('Mul', [up, mask]);
}
