/**
 * Max-pool routing through the window taps, with no `Indices` output (the plain graph's form; pass
 * `pool-indices` uses MaxPool's indices instead). For a pool with a kh×kw window, tap (a, e) is the strided view
 * of the (−∞-padded) input that every window reads at offset (a, e). In row-major tap order, a window's first tap
 * equal to its maximum is its arg-max: the same element onnxruntime's MaxPool indices name. The hits, one
 * [1, C, Ho, Wo] map per tap, route a gradient back: each tap's share is spread onto the stride grid at the tap's
 * offset and the taps are summed, so overlapping and padded windows add up as the scatter-add does.
 */
import type { PoolOp, Shape } from './ir';
import type { OnnxBuilder } from './onnx-builder';

export interface PoolTaps {
  /** [1, C·K, Ho, Wo]: channel c·K + t is 1 where tap t is its window's arg-max (K = kh·kw taps). */
  hits: string;
  taps: number;
}

/** The arg-max hits of max pool `pool` on forward input `x` [1, C, H, W] with forward output `y` [1, C, Ho, Wo]. */
export function poolTaps(b: OnnxBuilder, pool: PoolOp, x: string, y: string, inShape: Shape, outShape: Shape): PoolTaps {
  const [c, h, w] = inShape as [number, number, number];
  const [, ho, wo] = outShape as [number, number, number];
  const [kh, kw] = pool.kernel;
  const [sh, sw] = pool.strides;
  const [pt, pl] = pool.pads;
  // pad to cover every window (ceil mode may reach past the explicit padding) with the lowest float
  const bottom = Math.max(0, (ho - 1) * sh + kh - (h + pt));
  const right = Math.max(0, (wo - 1) * sw + kw - (w + pl));
  const padded = pt || pl || bottom || right ? b.node('Pad', [x, b.ints('pads', [0, 0, pt, pl, 0, 0, bottom, right]), b.floats('lowest', [-3.4028234663852886e38], [])]) : x;
  const hits: string[] = [];
  let taken = '';
  for (let a = 0; a < kh; a++) {
    for (let e = 0; e < kw; e++) {
      const tap = b.node('Slice', [padded, b.ints('starts', [a, e]), b.ints('ends', [a + (ho - 1) * sh + 1, e + (wo - 1) * sw + 1]), b.ints('axes', [2, 3]), b.ints('steps', [sh, sw])]);
      const eq = b.node('Cast', [b.node('Equal', [tap, y])], { to: { i: 1 } });
      const hit = taken ? b.node('Mul', [eq, b.node('Sub', [b.floats('one', [1], []), taken])]) : eq;
      taken = taken ? b.node('Add', [taken, hit]) : hit;
      hits.push(b.node('Unsqueeze', [hit, b.ints('axes', [2])]));
    }
  }
  const k = kh * kw;
  const stacked = hits.length === 1 ? hits[0]! : b.node('Concat', hits, { axis: { i: 2 } });
  const flat = b.node('Reshape', [stacked, b.ints('shape', [1, c * k, ho, wo])]);
  return { hits: flat, taps: k };
}

/**
 * Sums, over the taps, tap t's [B, C, Ho, Wo] map placed at the input positions its windows read (row i·sh + a,
 * column j·sw + e of the padded input), cropped to the input [B, C, H, W]. Built from Reshape, Pad and Slice only:
 * a grouped ConvTranspose would do the same in one op, but onnxruntime's WebGPU kernel gets a grouped
 * ConvTranspose with several input channels per group wrong (measured: max difference 2 on values of order 1).
 */
function placeTaps(b: OnnxBuilder, perTap: string, pool: Pick<PoolOp, 'kernel' | 'strides' | 'pads'>, inShape: Shape, outShape: Shape): string {
  const [c, h, w] = inShape as [number, number, number];
  const [, ho, wo] = outShape as [number, number, number];
  const [kh, kw] = pool.kernel;
  const [sh, sw] = pool.strides;
  const [pt, pl] = pool.pads;
  const k = kh * kw;
  // [B, C, K, Ho, Wo] -> one [B, C, Ho, Wo] per tap
  const taps = b.nodeN('Split', [perTap, b.ints('split', new Array<number>(k).fill(1))], k, { axis: { i: 2 } });
  // every tap spread onto the stride grid: [B, C, Ho·sh, Wo·sw] with its values at (i·sh, j·sw)
  const hp = Math.max((ho - 1) * sh + kh, pt + h);
  const wp = Math.max((wo - 1) * sw + kw, pl + w);
  const placed = taps.map((t, idx) => {
    const a = Math.floor(idx / kw);
    const e = idx % kw;
    const grid = b.node('Reshape', [t, b.ints('shape', [-1, c, ho, 1, wo, 1])]);
    const spread = b.node('Reshape', [b.node('Pad', [grid, b.ints('pads', [0, 0, 0, 0, 0, 0, 0, 0, 0, sh - 1, 0, sw - 1])]), b.ints('shape', [-1, c, ho * sh, wo * sw])]);
    const shifted = b.node('Pad', [spread, b.ints('pads', [0, 0, a, e, 0, 0, Math.max(0, hp - ho * sh - a), Math.max(0, wp - wo * sw - e)])]);
    return b.node('Slice', [shifted, b.ints('starts', [0, 0]), b.ints('ends', [hp, wp]), b.ints('axes', [2, 3])]);
  });
  const sum = placed.length === 1 ? placed[0]! : b.node('Sum', placed);
  return b.node('Slice', [sum, b.ints('starts', [pt, pl]), b.ints('ends', [pt + h, pl + w]), b.ints('axes', [2, 3])]);
}

/** One-hot [1, C, H, W] of each window's arg-max. */
export function tapsOneHot(b: OnnxBuilder, taps: PoolTaps, pool: Pick<PoolOp, 'kernel' | 'strides' | 'pads'>, inShape: Shape, outShape: Shape): string {
  const [c, ho, wo] = outShape as [number, number, number];
  return placeTaps(b, b.node('Reshape', [taps.hits, b.ints('shape', [1, c, taps.taps, ho, wo])]), pool, inShape, outShape);
}

/** The pool's backward: gy [B, C, Ho, Wo] routed to each window's arg-max, overlapping windows adding up. */
export function tapsBackward(b: OnnxBuilder, taps: PoolTaps, gy: string, pool: Pick<PoolOp, 'kernel' | 'strides' | 'pads'>, inShape: Shape, outShape: Shape): string {
  const [c, ho, wo] = outShape as [number, number, number];
  const routed = b.node('Mul', [b.node('Unsqueeze', [gy, b.ints('axes', [2])]), b.node('Reshape', [taps.hits, b.ints('shape', [1, c, taps.taps, ho, wo])])]);
  return placeTaps(b, routed, pool, inShape, outShape);
}
