/**
 * The probes' logistic-regression head: near-perfect on a separable problem, and on a tiny
 * non-separable one the same probabilities as a brute-force minimisation of the equivalent binary
 * problem (two classes: only w1 − w0 and b1 − b0 matter, and the L2 optimum has w0 = −w1).
 */
import * as assert from 'node:assert/strict';
import { fitLogistic, predictClass, predictProba } from '../../services/analysis/logistic';
import { seededRandom } from '../../services/random';

describe('logistic regression (L-BFGS softmax head)', function () {
  this.timeout(60_000);

  it('separates four Gaussian blobs in 5-D almost perfectly', async () => {
    const rand = seededRandom(7);
    const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const centres = [
      [4, 0, 0, 0, 1],
      [0, 4, 0, 0, 1],
      [0, 0, 4, 0, 1],
      [0, 0, 0, 4, 1],
    ];
    const make = (n: number): { x: Float32Array; y: Int32Array } => {
      const x = new Float32Array(n * 5);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        y[i] = i % 4;
        for (let j = 0; j < 5; j++) x[i * 5 + j] = centres[y[i]!]![j]! * 10 + gauss() + 100; // offset and scale: standardisation matters
      }
      return { x, y };
    };
    const train = make(400);
    const test = make(200);
    const m = await fitLogistic(train.x, train.y, 400, 5, 4, { l2: 1e-4, iterations: 100 });
    const acc = (d: { x: Float32Array; y: Int32Array }, n: number): number => predictClass(m, d.x, n).reduce((s, p, i) => s + (p === d.y[i] ? 1 : 0), 0) / n;
    assert.ok(acc(train, 400) >= 0.99, `train accuracy ${acc(train, 400)}`);
    assert.ok(acc(test, 200) >= 0.99, `test accuracy ${acc(test, 200)}`);
    const p = predictProba(m, test.x, 200);
    for (let i = 0; i < 200; i++) {
      const row = Array.from(p.subarray(i * 4, i * 4 + 4));
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-9);
    }
  });

  it('matches a brute-force minimum on a tiny two-class problem', async () => {
    const x = [0, 1, 2, 3, 4, 5];
    const y = [0, 0, 1, 0, 1, 1];
    const n = x.length;
    const l2 = 0.05;
    const m = await fitLogistic(Float64Array.from(x), Int32Array.from(y), n, 1, 2, { l2, iterations: 500, tolerance: 1e-10 });
    // the same problem by hand on standardised x: p(1) = σ(d·s + e), loss = mean CE + (l2/4)·d²
    const mean = x.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    const s = x.map((v) => (v - mean) / sd);
    const loss = (d: number, e: number): number =>
      s.reduce((acc, si, i) => {
        const z = d * si + e;
        return acc + (y[i] === 1 ? Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));
      }, 0) / n + (l2 / 4) * d * d;
    let best = { d: 0, e: 0, l: Infinity };
    for (let span = 4, cd = 0, ce = 0; span > 1e-7; span /= 10) {
      for (let i = -20; i <= 20; i++) {
        for (let j = -20; j <= 20; j++) {
          const d = cd + (i * span) / 10;
          const e = ce + (j * span) / 10;
          const l = loss(d, e);
          if (l < best.l) best = { d, e, l };
        }
      }
      cd = best.d;
      ce = best.e;
    }
    const p = predictProba(m, Float64Array.from(x), n);
    for (let i = 0; i < n; i++) {
      const want = 1 / (1 + Math.exp(-(best.d * s[i]! + best.e)));
      assert.ok(Math.abs(p[i * 2 + 1]! - want) < 1e-5, `sample ${i}: p(1) ${p[i * 2 + 1]} vs brute force ${want}`);
    }
    assert.ok(Math.abs(m.weights[1]! + m.weights[0]!) < 1e-6, 'the L2 optimum splits the weight symmetrically');
    assert.ok(Math.abs(m.loss - best.l) < 1e-8, `loss ${m.loss} vs ${best.l}`);
  });
});
