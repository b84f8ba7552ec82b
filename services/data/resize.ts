/**
 * Bilinear resampling of HWC images (half-pixel centres, no antialiasing: the convention of
 * OpenCV's INTER_LINEAR and of PyTorch's `interpolate(mode='bilinear', align_corners=False)`).
 */

/** Per-axis taps: output coordinate o reads source i0[o] and i1[o] with weight 1-f[o] and f[o]. */
export interface AxisTaps {
  i0: Int32Array;
  i1: Int32Array;
  f: Float32Array;
}

export function axisTaps(inSize: number, outSize: number): AxisTaps {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const f = new Float32Array(outSize);
  const ratio = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    let s = (o + 0.5) * ratio - 0.5;
    if (s < 0) s = 0;
    if (s > inSize - 1) s = inSize - 1;
    const lo = Math.floor(s);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    f[o] = s - lo;
  }
  return { i0, i1, f };
}

/** Resizes one HWC uint8 image to [outH, outW] (same channels), rounding to the nearest integer. */
export function resizeBilinearU8(
  src: Uint8Array,
  h: number,
  w: number,
  c: number,
  outH: number,
  outW: number,
  out: Uint8Array = new Uint8Array(outH * outW * c),
): Uint8Array {
  if (h === outH && w === outW) {
    out.set(src.subarray(0, h * w * c));
    return out;
  }
  const ty = axisTaps(h, outH);
  const tx = axisTaps(w, outW);
  let o = 0;
  for (let y = 0; y < outH; y++) {
    const r0 = ty.i0[y] * w;
    const r1 = ty.i1[y] * w;
    const fy = ty.f[y];
    for (let x = 0; x < outW; x++) {
      const x0 = tx.i0[x];
      const x1 = tx.i1[x];
      const fx = tx.f[x];
      const p00 = (r0 + x0) * c;
      const p01 = (r0 + x1) * c;
      const p10 = (r1 + x0) * c;
      const p11 = (r1 + x1) * c;
      for (let k = 0; k < c; k++) {
        const top = src[p00 + k] + (src[p01 + k] - src[p00 + k]) * fx;
        const bottom = src[p10 + k] + (src[p11 + k] - src[p10 + k]) * fx;
        const v = top + (bottom - top) * fy;
        out[o++] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  return out;
}
