/**
 * Pass `packed-conv`: the backward of stride-1, size-preserving convs on small maps (at most PACKED_MAX_WIDTH
 * wide, 8 or more input channels) with the batch laid side by side. A [B, Cin, H, W] gradient runs as one
 * flipped-kernel conv of a single [1, Cin, H, B·(W+gap)] image: the B images along the width, separated by
 * `gap` zero columns (at least the widest side padding), so that no window reaches from one image into the
 * next. One wide image keeps onnxruntime's conv kernels busy where per-image maps of 4×4 give them too few
 * columns. Exact: every output column of an image reads only its own image and zeros.
 *
 * The result stays packed ([Cout, H, B, W+gap], its gap columns holding garbage) for the ReLU and tiling
 * max-pool backward that follow (they apply their masks in this layout); `batch` unpacks a gradient where a
 * backward needs the batch layout. VGG11 on ORT CPU, one thread, 64 rows a run: the 4×4 layers' backward
 * 10–15% faster; packing the 8×8 layers too lost.
 */
import type { ConvOp, Shape } from '../ir';
import type { OnnxBuilder } from '../onnx-builder';
import type { BackwardContext } from './context';
import { flippable, flippedPads, flippedWeight } from './flipped-conv';

export const packedConvPass = {
  name: 'packed-conv',
  summary: 'backward of stride-1 convs on maps up to 4 wide with the batch side by side as one wide image',
} as const;

/** Maps at most this wide are packed. */
export const PACKED_MAX_WIDTH = 4;

export function packedConvApplies(op: ConvOp, inShape: Shape, outShape: Shape): boolean {
  const [cin, h, w] = inShape;
  return cin >= 8 && w <= PACKED_MAX_WIDTH && flippable(op) && h === outShape[1] && w === outShape[2];
}

/** A gradient laid out [C, H, B, W+gap]: the batch side by side along the width. */
export interface Packed {
  c: number;
  h: number;
  w: number;
  gap: number;
  /** Whether the gap columns may hold non-zeros. */
  dirty: boolean;
}

/** The gradients of one attribution graph held in the packed layout, and their batch-layout copies once made. */
export class PackedLayout {
  private readonly packed = new Map<string, Packed>();
  private readonly unpacked = new Map<string, string>();

  constructor(private readonly b: OnnxBuilder) {}

  /** The layout of `v` if it is packed. */
  of(v: string): Packed | undefined {
    return this.packed.get(v);
  }

  keep(v: string, p: Packed): string {
    this.packed.set(v, p);
    return v;
  }

  /** `v` in the batch layout [B, C, H, W]: packed gradients are cropped and transposed back (once). */
  batch(v: string): string {
    const p = this.packed.get(v);
    if (!p) return v;
    const hit = this.unpacked.get(v);
    if (hit) return hit;
    const b = this.b;
    const cropped = p.gap > 0 ? b.node('Slice', [v, b.ints('s', [0]), b.ints('e', [p.w]), b.ints('a', [3])]) : v;
    const out = b.node('Transpose', [cropped], { perm: { ints: [2, 0, 1, 3] } });
    this.unpacked.set(v, out);
    return out;
  }

  /** A batch-1 mask [1, C, H, W] in the packed layout [C, H, 1, W+gap], zero on the gap columns. */
  mask(m: string, p: Packed): string {
    const b = this.b;
    const padded = p.gap > 0 ? b.node('Pad', [m, b.ints('pads', [0, 0, 0, 0, 0, 0, 0, p.gap])]) : m;
    return b.node('Reshape', [padded, b.ints('shape', [p.c, p.h, 1, p.w + p.gap])]);
  }

  private gapMask(w: number, gap: number): string {
    const m = new Float32Array(w + gap);
    m.fill(1, 0, w);
    return this.b.floatInit('gap_mask', [w + gap], m);
  }

  /** The input gradient of a stride-1, size-preserving conv, packed (see above). */
  conv(ctx: BackwardContext, op: ConvOp, x: string, inShape: Shape, outShape: Shape): string {
    const b = this.b;
    const weight = flippedWeight(ctx, op.weight, op.group);
    const [cin, h, w] = inShape;
    const [cout] = outShape;
    const pads = flippedPads(op);
    const need = Math.max(pads[1], pads[3]);
    let p = this.packed.get(x);
    if (p && p.gap < need) {
      x = this.batch(x);
      p = undefined;
    }
    let flat: string;
    let gap: number;
    if (p) {
      gap = p.gap;
      // zero the gap columns a previous conv left behind
      const clean = p.dirty && gap > 0 ? b.node('Mul', [x, this.gapMask(w, gap)]) : x;
      flat = b.node('Reshape', [clean, b.ints('shape', [1, cout, h, -1])]);
    } else {
      gap = need;
      const padded = gap > 0 ? b.node('Pad', [x, b.ints('pads', [0, 0, 0, 0, 0, 0, 0, gap])]) : x;
      // [B, Cout, H, W+gap] -> [Cout, H, B, W+gap] -> [1, Cout, H, B*(W+gap)]
      const t = b.node('Transpose', [padded], { perm: { ints: [1, 2, 0, 3] } });
      flat = b.node('Reshape', [t, b.ints('shape', [1, cout, h, -1])]);
    }
    const y = b.node('Conv', [flat, weight], {
      kernel_shape: { ints: op.kernel },
      pads: { ints: pads },
      dilations: { ints: op.dilations },
      group: { i: op.group },
    });
    const out = b.node('Reshape', [y, b.ints('shape', [cin, h, -1, w + gap])]);
    return this.keep(out, { c: cin, h, w, gap, dirty: gap > 0 });
  }
}
