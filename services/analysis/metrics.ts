/**
 * Image similarity metrics of the method (SPEC §3), on flattened CHW images in input space.
 *
 * Every metric returns a similarity (higher = more alike):
 * - cosine:     a·b / (|a| |b|)                                       in [-1, 1] (the default)
 * - euclidean:  1 / (1 + ‖a/|a| − b/|b|‖)                             in [1/3, 1]
 * - pearson:    correlation of the two value sequences                in [-1, 1]
 * - histogram:  intersection of the two images' value histograms      in [0, 1]
 *               (each image min-max mapped to [0, 1], `HISTOGRAM_BINS` bins, normalised to sum 1)
 * - phash:      1 − hamming(pHash(a), pHash(b)) / 64                   in [0, 1]
 *               (64-bit DCT perceptual hash of the channel-mean grey image, as the `imagehash` library:
 *               resize to 32×32, 2-D DCT-II, the 8×8 lowest frequencies compared with their median)
 *
 * An all-zero image has no direction: against it every metric gives 0, and a neuron whose image is
 * all zeros is flagged dead (SPEC §3).
 */
import { invalidArgument } from '../errors';

export type MetricName = 'cosine' | 'euclidean' | 'pearson' | 'histogram' | 'phash';
export const METRICS: readonly MetricName[] = ['cosine', 'euclidean', 'pearson', 'histogram', 'phash'];

/** [C, H, W] of the images compared (pHash needs the spatial layout; the others ignore it). */
export type ImageShape = readonly [number, number, number];

export const HISTOGRAM_BINS = 32;
const HASH_SIZE = 8;
const HASH_RESIZE = 32;

export function isAllZero(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

function checkLengths(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw invalidArgument(`images differ in size: ${a.length} vs ${b.length} values`);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

export function cosine(a: Float32Array, b: Float32Array): number {
  checkLengths(a, b);
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return 0;
  return dot(a, b) / (na * nb);
}

export function euclideanSimilarity(a: Float32Array, b: Float32Array): number {
  checkLengths(a, b);
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] / na - b[i] / nb;
    s += d * d;
  }
  return 1 / (1 + Math.sqrt(s));
}

export function pearson(a: Float32Array, b: Float32Array): number {
  checkLengths(a, b);
  const n = a.length;
  if (n === 0) return 0;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma;
    const db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa === 0 || sbb === 0) return 0;
  return sab / Math.sqrt(saa * sbb);
}

/** Normalised histogram (sums to 1) of the values after a min-max map to [0, 1]. */
export function valueHistogram(a: Float32Array, bins = HISTOGRAM_BINS): Float64Array {
  const h = new Float64Array(bins);
  if (a.length === 0) return h;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
  }
  const range = hi - lo;
  for (let i = 0; i < a.length; i++) {
    const t = range > 0 ? (a[i] - lo) / range : 0;
    h[Math.min(bins - 1, Math.floor(t * bins))] += 1;
  }
  for (let k = 0; k < bins; k++) h[k] /= a.length;
  return h;
}

export function histogramIntersection(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += Math.min(a[k], b[k]);
  return s;
}

/** Channel-mean grey image [H, W]. */
export function greyImage(a: Float32Array, shape: ImageShape): Float64Array {
  const [c, h, w] = shape;
  if (a.length !== c * h * w) throw invalidArgument(`image has ${a.length} values, expected ${c}×${h}×${w}`);
  const g = new Float64Array(h * w);
  for (let ch = 0; ch < c; ch++) {
    const off = ch * h * w;
    for (let i = 0; i < h * w; i++) g[i] += a[off + i];
  }
  for (let i = 0; i < h * w; i++) g[i] /= c;
  return g;
}

/**
 * Area resampling of a [h, w] image to [size, size]: each output cell is the mean of the input over the
 * cell's footprint (fractional overlaps weighted), which works for both shrinking and enlarging.
 */
export function resizeArea(g: Float64Array, h: number, w: number, size: number): Float64Array {
  const rowW = overlapWeights(h, size);
  const colW = overlapWeights(w, size);
  const tmp = new Float64Array(size * w); // rows resized
  for (const [o, i, wt] of rowW) for (let x = 0; x < w; x++) tmp[o * w + x] += wt * g[i * w + x];
  const out = new Float64Array(size * size);
  for (let y = 0; y < size; y++) for (const [o, i, wt] of colW) out[y * size + o] += wt * tmp[y * w + i];
  return out;
}

/** [output index, input index, weight] triples; weights of one output sum to 1. */
function overlapWeights(n: number, size: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  const scale = n / size; // input cells per output cell
  for (let o = 0; o < size; o++) {
    const a = o * scale;
    const b = (o + 1) * scale;
    for (let i = Math.floor(a); i < Math.min(n, Math.ceil(b)); i++) {
      const overlap = Math.min(b, i + 1) - Math.max(a, i);
      if (overlap > 0) out.push([o, i, overlap / scale]);
    }
  }
  return out;
}

/** Orthonormal-free DCT-II along rows then columns (scaling does not matter for the hash). */
export function dct2d(g: Float64Array, n: number): Float64Array {
  const cos = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) cos[k * n + i] = Math.cos((Math.PI * (2 * i + 1) * k) / (2 * n));
  const rows = new Float64Array(n * n);
  for (let y = 0; y < n; y++)
    for (let k = 0; k < n; k++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += g[y * n + i] * cos[k * n + i];
      rows[y * n + k] = s;
    }
  const out = new Float64Array(n * n);
  for (let x = 0; x < n; x++)
    for (let k = 0; k < n; k++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += rows[i * n + x] * cos[k * n + i];
      out[k * n + x] = s;
    }
  return out;
}

/** 64-bit perceptual hash; bit (8·u + v) is set where DCT coefficient (u, v) exceeds the median. */
export function phash(a: Float32Array, shape: ImageShape): bigint {
  const [, h, w] = shape;
  const small = resizeArea(greyImage(a, shape), h, w, HASH_RESIZE);
  const d = dct2d(small, HASH_RESIZE);
  const low: number[] = [];
  for (let u = 0; u < HASH_SIZE; u++) for (let v = 0; v < HASH_SIZE; v++) low.push(d[u * HASH_RESIZE + v]);
  const sorted = [...low].sort((x, y) => x - y);
  const median = (sorted[31] + sorted[32]) / 2;
  let bits = 0n;
  low.forEach((value, i) => {
    if (value > median) bits |= 1n << BigInt(i);
  });
  return bits;
}

export function hamming64(a: bigint, b: bigint): number {
  let x = a ^ b;
  let count = 0;
  while (x !== 0n) {
    x &= x - 1n;
    count++;
  }
  return count;
}

export function phashSimilarity(a: bigint, b: bigint): number {
  return 1 - hamming64(a, b) / 64;
}

/** The value of one metric for two images (a convenience; `comparator` is faster for one-vs-many). */
export function similarityOf(metric: MetricName, a: Float32Array, b: Float32Array, shape: ImageShape): number {
  return comparator(metric, a, shape)(b).value;
}

export interface Comparison {
  value: number;
  /** The image compared is all zeros (a dead neuron): its value is 0. */
  dead: boolean;
}

/**
 * Prepares a metric against a fixed reference image (the class average or the class-logit image) and
 * returns a function that scores one image against it. Whatever can be computed once (the reference's
 * norm, histogram, hash) is.
 */
export function comparator(metric: MetricName, reference: Float32Array, shape: ImageShape): (image: Float32Array) => Comparison {
  const size = shape[0] * shape[1] * shape[2];
  if (reference.length !== size) throw invalidArgument(`reference image has ${reference.length} values, expected ${size}`);
  const refZero = isAllZero(reference);
  const score = scorer(metric, reference, shape);
  return (image) => {
    checkLengths(reference, image);
    if (isAllZero(image)) return { value: 0, dead: true };
    return { value: refZero ? 0 : score(image), dead: false };
  };
}

function scorer(metric: MetricName, ref: Float32Array, shape: ImageShape): (image: Float32Array) => number {
  switch (metric) {
    case 'cosine': {
      const nr = norm(ref);
      return (x) => dot(ref, x) / (nr * norm(x));
    }
    case 'euclidean':
      return (x) => euclideanSimilarity(ref, x);
    case 'pearson':
      return (x) => pearson(ref, x);
    case 'histogram': {
      const hr = valueHistogram(ref);
      return (x) => histogramIntersection(hr, valueHistogram(x));
    }
    case 'phash': {
      const pr = phash(ref, shape);
      return (x) => phashSimilarity(pr, phash(x, shape));
    }
    default:
      throw invalidArgument(`unknown similarity metric '${String(metric)}' (expected one of ${METRICS.join(', ')})`);
  }
}
