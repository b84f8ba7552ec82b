/**
 * A convolution on a tiny map written as one matrix. On a 2×2 map a 3×3 conv touches every input
 * position from every output position, so the conv is a dense layer over the flattened [C·H·W] values:
 * one large GEMM across the batch instead of onnxruntime's per-image conv GEMMs with N = H·W columns
 * (measured on one thread, 512→512 channels on 2×2, 256 images: Conv 100–197 ms, the matrix 37 ms).
 * The forward uses it as y = x · Dᵀ + b, the backward as gx = gy · D, sharing one initializer.
 */
import type { ConvOp } from './ir';

/** Dense matrices above this many entries (64 MiB of float32) stay convolutions. */
export const DENSE_MAX_ENTRIES = 16 * 1024 * 1024;

type Shape3 = readonly number[];

/** Whether the matrix does no more multiply-adds than the conv does (one input position per kernel tap or fewer). */
export function denseIsCheaper(op: ConvOp, inShape: Shape3): boolean {
  const [, h, w] = inShape;
  return h * w * op.group <= op.kernel[0] * op.kernel[1];
}

export function denseEntries(inShape: Shape3, outShape: Shape3): number {
  return inShape[0] * inShape[1] * inShape[2] * outShape[0] * outShape[1] * outShape[2];
}

/** Whether `auto` lowering writes this conv as a matrix. */
export function convAsDense(op: ConvOp, inShape: Shape3, outShape: Shape3): boolean {
  return denseIsCheaper(op, inShape) && denseEntries(inShape, outShape) <= DENSE_MAX_ENTRIES;
}

/** D[(o, y, x), (i, y', x')] = the sum of the weights linking input (i, y', x') to output (o, y, x). */
export function convDenseMatrix(op: ConvOp, weight: Float32Array, inShape: Shape3, outShape: Shape3): Float32Array {
  const [cin, h, wd] = inShape;
  const [cout, ho, wo] = outShape;
  const [kh, kw] = op.kernel;
  const cinG = cin / op.group;
  const coutG = cout / op.group;
  const cols = cin * h * wd;
  const d = new Float32Array(cout * ho * wo * cols);
  for (let o = 0; o < cout; o++) {
    const gi = Math.floor(o / coutG);
    for (let y = 0; y < ho; y++)
      for (let x = 0; x < wo; x++) {
        const row = ((o * ho + y) * wo + x) * cols;
        for (let i = 0; i < cinG; i++)
          for (let a = 0; a < kh; a++) {
            const iy = y * op.strides[0] - op.pads[0] + a * op.dilations[0];
            if (iy < 0 || iy >= h) continue;
            for (let c = 0; c < kw; c++) {
              const ix = x * op.strides[1] - op.pads[1] + c * op.dilations[1];
              if (ix < 0 || ix >= wd) continue;
              d[row + ((gi * cinG + i) * h + iy) * wd + ix] += weight[((o * cinG + i) * kh + a) * kw + c];
            }
          }
      }
  }
  return d;
}

/** The bias repeated over the output positions: [(o, y, x)]. */
export function denseBias(bias: Float32Array, outShape: Shape3): Float32Array {
  const per = outShape[1] * outShape[2];
  const out = new Float32Array(bias.length * per);
  for (let o = 0; o < bias.length; o++) out.fill(bias[o], o * per, (o + 1) * per);
  return out;
}
