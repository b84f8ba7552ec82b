/**
 * A plain-loop reference for a tiny network, conv -> relu -> max-pool -> conv, written independently of
 * the ONNX graphs: forward with arg-max bookkeeping, then the backward rules of SPEC §2 element by
 * element. Float64 throughout.
 */
export interface Conv {
  w: Float32Array; // [cout, cin, k, k]
  b: Float32Array; // [cout]
  cout: number;
  cin: number;
  k: number;
  stride: number;
  pad: number;
}

export interface Tensor3 {
  c: number;
  h: number;
  w: number;
  d: Float64Array;
}

const at = (t: Tensor3, c: number, y: number, x: number): number => t.d[(c * t.h + y) * t.w + x];

export function conv2d(x: Tensor3, p: Conv): Tensor3 {
  const h = Math.floor((x.h + 2 * p.pad - p.k) / p.stride) + 1;
  const w = Math.floor((x.w + 2 * p.pad - p.k) / p.stride) + 1;
  const out: Tensor3 = { c: p.cout, h, w, d: new Float64Array(p.cout * h * w) };
  for (let o = 0; o < p.cout; o++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let s = p.b[o];
        for (let c = 0; c < p.cin; c++)
          for (let a = 0; a < p.k; a++)
            for (let e = 0; e < p.k; e++) {
              const yy = i * p.stride - p.pad + a;
              const xx = j * p.stride - p.pad + e;
              if (yy < 0 || xx < 0 || yy >= x.h || xx >= x.w) continue;
              s += p.w[((o * p.cin + c) * p.k + a) * p.k + e] * at(x, c, yy, xx);
            }
        out.d[(o * h + i) * w + j] = s;
      }
  return out;
}

/** Input gradient of a conv: every output position scatters its gradient through the weights. */
export function conv2dBackward(gy: Tensor3, x: Tensor3, p: Conv): Tensor3 {
  const gx: Tensor3 = { c: x.c, h: x.h, w: x.w, d: new Float64Array(x.d.length) };
  for (let o = 0; o < p.cout; o++)
    for (let i = 0; i < gy.h; i++)
      for (let j = 0; j < gy.w; j++) {
        const g = at(gy, o, i, j);
        if (g === 0) continue;
        for (let c = 0; c < p.cin; c++)
          for (let a = 0; a < p.k; a++)
            for (let e = 0; e < p.k; e++) {
              const yy = i * p.stride - p.pad + a;
              const xx = j * p.stride - p.pad + e;
              if (yy < 0 || xx < 0 || yy >= x.h || xx >= x.w) continue;
              gx.d[(c * x.h + yy) * x.w + xx] += g * p.w[((o * p.cin + c) * p.k + a) * p.k + e];
            }
      }
  return gx;
}

/** Max-pool; `arg` holds the flat input index of each output's maximum (first one in scan order). */
export function maxPool(x: Tensor3, k: number, stride: number, pad: number): { y: Tensor3; arg: Int32Array } {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const w = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const y: Tensor3 = { c: x.c, h, w, d: new Float64Array(x.c * h * w) };
  const arg = new Int32Array(x.c * h * w);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        let best = -Infinity;
        let bi = -1;
        for (let a = 0; a < k; a++)
          for (let e = 0; e < k; e++) {
            const yy = i * stride - pad + a;
            const xx = j * stride - pad + e;
            if (yy < 0 || xx < 0 || yy >= x.h || xx >= x.w) continue;
            const v = at(x, c, yy, xx);
            if (v > best) {
              best = v;
              bi = (c * x.h + yy) * x.w + xx;
            }
          }
        y.d[(c * h + i) * w + j] = best;
        arg[(c * h + i) * w + j] = bi;
      }
  return { y, arg };
}

export type Rule = 'gradient' | 'guided' | 'deconv';

/**
 * d(sum_k sel[k] * objective_k)/d(input) for conv1 -> relu -> maxpool(k, s, pad) -> conv2, objective
 * abs_sum of conv2's channel k.
 */
export function referenceAttribution(
  x: Tensor3,
  conv1: Conv,
  pool: { k: number; stride: number; pad: number },
  conv2: Conv,
  sel: number[],
  rule: Rule,
): Float64Array {
  const z1 = conv2d(x, conv1);
  const r = { ...z1, d: z1.d.map((v) => Math.max(v, 0)) };
  const { y: p, arg } = maxPool(r, pool.k, pool.stride, pool.pad);
  const z2 = conv2d(p, conv2);
  const seed = { ...z2, d: new Float64Array(z2.d.length) };
  const hw = z2.h * z2.w;
  for (let k = 0; k < z2.c; k++) for (let q = 0; q < hw; q++) seed.d[k * hw + q] = sel[k] * Math.sign(z2.d[k * hw + q]);
  const gp = conv2dBackward(seed, p, conv2);
  const gr = { ...r, d: new Float64Array(r.d.length) };
  for (let q = 0; q < arg.length; q++) gr.d[arg[q]] += gp.d[q];
  const gz = { ...z1, d: new Float64Array(z1.d.length) };
  for (let q = 0; q < gz.d.length; q++) {
    const g = gr.d[q];
    const fwd = z1.d[q] > 0;
    if (rule === 'gradient') gz.d[q] = fwd ? g : 0;
    else if (rule === 'guided') gz.d[q] = fwd && g > 0 ? g : 0;
    else gz.d[q] = g > 0 ? g : 0;
  }
  return conv2dBackward(gz, x, conv1).d;
}
