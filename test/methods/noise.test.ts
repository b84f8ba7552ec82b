/**
 * The SmoothGrad noise (services/methods/noise.ts) against its documented definition: mulberry32(seed)
 * uniforms through Box–Muller written out here, sample s taking the normals s·n … (s+1)·n − 1; the
 * normals' distribution; σ = noise_level · (max − min) of the input.
 */
import * as assert from 'node:assert/strict';
import { gaussians, noiseSigma, noisyInputs } from '../../services/methods/noise';
import { seededRandom } from '../../services/random';

/** The first `count` normals of a seed, from the documented formula. */
function documentedNormals(seed: number, count: number): number[] {
  const u = seededRandom(seed);
  const out: number[] = [];
  while (out.length < count) {
    const u1 = u();
    const u2 = u();
    const r = Math.sqrt(-2 * Math.log(1 - u1));
    out.push(r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2));
  }
  return out.slice(0, count);
}

function take(g: Generator<number>, count: number): number[] {
  return Array.from({ length: count }, () => g.next().value as number);
}

describe('methods: SmoothGrad noise', () => {
  it('the normals are Box–Muller over mulberry32(seed), in order, and replay per seed', () => {
    for (const seed of [0, 1, 12345, 0xffffffff]) {
      assert.deepEqual(take(gaussians(seed), 101), documentedNormals(seed, 101));
    }
    assert.deepEqual(take(gaussians(9), 50), take(gaussians(9), 50));
    assert.notDeepEqual(take(gaussians(9), 50), take(gaussians(10), 50));
  });

  it('the normals are standard normal (moments and the 1σ, 2σ masses over 400 000 draws)', () => {
    const n = 400_000;
    const g = gaussians(2024);
    let sum = 0;
    let sumSq = 0;
    let sum4 = 0;
    let in1 = 0;
    let in2 = 0;
    for (let i = 0; i < n; i++) {
      const z = g.next().value;
      sum += z;
      sumSq += z * z;
      sum4 += z ** 4;
      if (Math.abs(z) < 1) in1++;
      if (Math.abs(z) < 2) in2++;
    }
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    // Standard errors: mean 1/√n = 0.0016, variance √(2/n) = 0.0022, masses ≤ 0.0008; bounds are ~5 of them.
    assert.ok(Math.abs(mean) < 0.008, `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 0.012, `variance ${variance}`);
    assert.ok(Math.abs(sum4 / n - 3) < 0.1, `fourth moment ${sum4 / n}`);
    assert.ok(Math.abs(in1 / n - 0.682689) < 0.004, `P(|z| < 1) = ${in1 / n}`);
    assert.ok(Math.abs(in2 / n - 0.954500) < 0.002, `P(|z| < 2) = ${in2 / n}`);
  });

  it('σ is noise_level times the range of the whole input', () => {
    const x = Float32Array.from([0.5, -1.25, 3, 2, -0.75, 0]);
    assert.equal(noiseSigma(x, 0.1), 0.1 * (3 - -1.25));
    assert.equal(noiseSigma(new Float32Array(4).fill(2), 0.5), 0);
  });

  it('sample s adds σ times the normals s·n … (s+1)·n − 1 to the input', () => {
    const n = 7;
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3);
    const sigma = noiseSigma(x, 0.2);
    const z = documentedNormals(42, 3 * n);
    const samples = [...noisyInputs(x, { samples: 3, noiseLevel: 0.2, seed: 42 })];
    assert.equal(samples.length, 3);
    samples.forEach((noisy, s) => {
      assert.deepEqual(noisy, Float32Array.from(x, (v, i) => v + sigma * z[s * n + i]!));
    });
    // Fresh arrays, the input untouched.
    assert.notEqual(samples[0], samples[1]);
    assert.deepEqual(x, Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 3));
  });
});
