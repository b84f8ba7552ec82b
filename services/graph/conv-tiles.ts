/**
 * A convolution on a small map whose weights do not fit in the CPU cache, run as one image holding the
 * whole batch side by side. onnxruntime's CPU Conv does one GEMM per sample: on a 4×4 map that is a GEMM
 * of only 16 columns, which reads the whole weight matrix from memory for every sample. With the samples
 * laid out as [1, C, H, N·(W+p)] (p zero columns after each, where p is the conv's horizontal padding, so
 * that no window sees a neighbour), the weights are read once for the batch; the outputs in the gap
 * columns are computed and dropped. Measured on one thread, 64 samples, 3×3 same convs: 512→512 on 4×4
 * (9 MiB of weights) 112–132 ms as Conv, 72–89 ms laid out this way; 256→512 on 4×4 (4.5 MiB) 40 ms
 * either way; 512→512 on 8×8 and anything smaller: slower this way (the gap columns cost more than the
 * pass over the weights saves). Results are identical (the same sums in the same order).
 */
import type { ConvOp } from './ir';

/** Weight matrices from this size up are taken not to stay in cache between samples. */
export const TILE_MIN_WEIGHT_BYTES = 8 * 1024 * 1024;
/** Maps of at most this many positions (a GEMM this narrow per sample is bound by the weight reads). */
export const TILE_MAX_POSITIONS = 16;

/** Whether a conv over a [C, H, W] input is run as one side-by-side image (see above). */
export function convAsTiles(op: ConvOp, inShape: readonly number[], weightFloats: number): boolean {
  const [kh, kw] = op.kernel;
  const [pt, pl, pb, pr] = op.pads;
  const same = kh % 2 === 1 && kw % 2 === 1 && pt === (kh - 1) / 2 && pb === pt && pl === (kw - 1) / 2 && pr === pl;
  return (
    op.group === 1 &&
    op.strides[0] === 1 &&
    op.strides[1] === 1 &&
    op.dilations[0] === 1 &&
    op.dilations[1] === 1 &&
    same &&
    pl >= 1 &&
    inShape[1] * inShape[2] <= TILE_MAX_POSITIONS &&
    weightFloats * 4 >= TILE_MIN_WEIGHT_BYTES
  );
}
