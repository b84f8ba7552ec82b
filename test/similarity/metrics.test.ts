import * as assert from 'node:assert/strict';
import {
  comparator,
  cosine,
  dct2d,
  euclideanSimilarity,
  hamming64,
  pearson,
  phash,
  resizeArea,
  similarityOf,
  valueHistogram,
  histogramIntersection,
  type ImageShape,
} from '../../services/analysis/metrics';

const f = (...v: number[]): Float32Array => Float32Array.from(v);
const close = (a: number, b: number, tol = 1e-6): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('similarity metrics on hand-made vectors', () => {
  it('cosine: angle of known vectors, scale invariance, opposites', () => {
    close(cosine(f(3, 4), f(4, 3)), 24 / 25);
    close(cosine(f(1, 0), f(0, 1)), 0);
    close(cosine(f(1, 2, 3), f(2, 4, 6)), 1);
    close(cosine(f(1, 2, 3), f(-1, -2, -3)), -1);
    // 45 degrees
    close(cosine(f(1, 0), f(1, 1)), Math.SQRT1_2);
  });

  it('euclidean: 1 / (1 + distance of the unit vectors)', () => {
    close(euclideanSimilarity(f(1, 0), f(0, 5)), 1 / (1 + Math.SQRT2));
    close(euclideanSimilarity(f(2, 0), f(7, 0)), 1);
    close(euclideanSimilarity(f(1, 0), f(-3, 0)), 1 / 3);
  });

  it('pearson: perfect, inverse and a worked example', () => {
    close(pearson(f(1, 2, 3), f(10, 20, 30).map((x) => x + 5)), 1);
    close(pearson(f(1, 2, 3), f(3, 2, 1)), -1);
    // x = 1,2,3,4 ; y = 2,1,4,3 : cov = 0.75 (x-2.5: -1.5,-.5,.5,1.5 · y-2.5: -.5,-1.5,1.5,.5 = .75+.75+.75+.75 = 3), var = 5 each
    close(pearson(f(1, 2, 3, 4), f(2, 1, 4, 3)), 3 / 5);
    close(pearson(f(1, 1, 1), f(1, 2, 3)), 0); // a constant has no correlation
  });

  it('histogram intersection of min-max normalised value histograms', () => {
    const a = valueHistogram(f(0, 0, 0, 1));
    const b = valueHistogram(f(5, 7, 7, 7));
    close(a[0], 0.75);
    close(a[a.length - 1], 0.25);
    close(histogramIntersection(a, b), 0.5);
    close(histogramIntersection(a, a), 1);
    // invariant to affine rescaling with a positive gain
    close(similarityOf('histogram', f(0, 1, 2, 3), f(10, 12, 14, 16), [1, 2, 2]), 1);
  });

  it('area resize preserves the mean and averages blocks', () => {
    const g = new Float64Array(4 * 4).map((_, i) => (Math.floor(i / 4) < 2 ? 1 : 3) + (i % 4 < 2 ? 0 : 10));
    const small = resizeArea(g, 4, 4, 2);
    assert.deepEqual(Array.from(small), [1, 11, 3, 13]);
    const odd = new Float64Array(28 * 28).map((_, i) => Math.sin(i));
    const big = resizeArea(odd, 28, 28, 32);
    const mean = (x: Float64Array): number => x.reduce((s, v) => s + v, 0) / x.length;
    close(mean(big), mean(odd), 1e-9);
  });

  it('pHash of an image synthesised from known low frequencies sets the bits above their median', () => {
    // image = sum over u, v < 8 of w[u][v] · cos(pi(2y+1)u/2n) · cos(pi(2x+1)v/2n); by orthogonality its
    // (unnormalised) DCT-II coefficient (u, v) is w[u][v] · s(u) · s(v), s(0) = n, s(k) = n/2.
    const n = 32;
    let state = 12345;
    const rand = (): number => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const w = Array.from({ length: 64 }, rand);
    const img = new Float32Array(3 * n * n);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < n; y++)
        for (let x = 0; x < n; x++) {
          let v = 0;
          for (let u = 0; u < 8; u++)
            for (let q = 0; q < 8; q++) v += w[u * 8 + q] * Math.cos((Math.PI * (2 * y + 1) * u) / (2 * n)) * Math.cos((Math.PI * (2 * x + 1) * q) / (2 * n));
          img[c * n * n + y * n + x] = v;
        }
    const s = (k: number): number => (k === 0 ? n : n / 2);
    const coeff = w.map((v, i) => v * s(Math.floor(i / 8)) * s(i % 8));
    const sorted = [...coeff].sort((a, b) => a - b);
    const median = (sorted[31] + sorted[32]) / 2;
    let expected = 0n;
    coeff.forEach((v, i) => {
      if (v > median) expected |= 1n << BigInt(i);
    });
    assert.equal(phash(img, [3, n, n]), expected);
    // the DCT itself: a single basis image has one non-zero coefficient of the predicted size
    const grey = new Float64Array(n * n).map((_, i) => Math.cos((Math.PI * (2 * Math.floor(i / n) + 1) * 2) / (2 * n)) * Math.cos((Math.PI * (2 * (i % n) + 1) * 3) / (2 * n)));
    const d = dct2d(grey, n);
    for (let i = 0; i < n * n; i++) close(d[i], i === 2 * n + 3 ? (n / 2) * (n / 2) : 0, 1e-9);
  });

  it('pHash: identical for a rescaled image, 1 − hamming/64 as similarity', () => {
    const shape: ImageShape = [1, 32, 32];
    const a = new Float32Array(32 * 32).map((_, i) => Math.sin(i * 0.37) + (i % 32) / 16);
    const b = a.map((x) => 3 * x);
    assert.equal(phash(a, shape), phash(b, shape));
    close(similarityOf('phash', a, b, shape), 1);
    const c = a.map((x, i) => (i < 512 ? -x : x));
    const expected = 1 - hamming64(phash(a, shape), phash(c, shape)) / 64;
    close(similarityOf('phash', a, c, shape), expected);
    assert.ok(expected < 1);
    assert.equal(hamming64(0b1011n, 0b0110n), 3);
  });

  it('an all-zero neuron image is dead with value 0; an all-zero reference gives 0', () => {
    const shape: ImageShape = [1, 2, 2];
    for (const metric of ['cosine', 'euclidean', 'pearson', 'histogram', 'phash'] as const) {
      const cmp = comparator(metric, f(1, 2, 3, 4), shape);
      assert.deepEqual(cmp(f(0, 0, 0, 0)), { value: 0, dead: true }, metric);
      assert.equal(cmp(f(1, 2, 3, 5)).dead, false);
      assert.deepEqual(comparator(metric, f(0, 0, 0, 0), shape)(f(1, 2, 3, 4)), { value: 0, dead: false });
    }
  });

  it('the comparator agrees with the one-off functions and rejects mismatched sizes', () => {
    const shape: ImageShape = [1, 2, 3];
    const ref = f(1, -2, 3, 0.5, 2, -1);
    const x = f(0.3, 0.1, -2, 4, 1, 1);
    close(comparator('cosine', ref, shape)(x).value, cosine(ref, x));
    close(comparator('pearson', ref, shape)(x).value, pearson(ref, x));
    close(comparator('euclidean', ref, shape)(x).value, euclideanSimilarity(ref, x));
    assert.throws(() => comparator('cosine', ref, shape)(f(1, 2)), /differ in size/);
    assert.throws(() => comparator('cosine', f(1, 2), shape), /reference image has 2 values/);
  });
});
