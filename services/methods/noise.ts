/**
 * The noise of the SmoothGrad wrapper, deterministic per seed so that results replay: one stream of
 * standard normals from mulberry32(seed) (services/random.ts) by Box–Muller, pairs in the order
 * r·cos θ, r·sin θ with r = √(−2 ln(1 − u₁)), θ = 2π u₂ for consecutive uniforms u₁, u₂ ∈ [0, 1).
 * Sample s of an input of n values takes the normals s·n … (s+1)·n − 1 of the stream, in NCHW order:
 *   x̃_s[i] = x[i] + σ · z[s·n + i],  σ = noise_level · (max(x) − min(x)).
 */
import { seededRandom } from '../random';

/** Standard normal numbers, endless, deterministic per seed (Box–Muller over mulberry32). */
export function* gaussians(seed: number): Generator<number, never> {
  const uniform = seededRandom(seed);
  for (;;) {
    const u1 = 1 - uniform(); // (0, 1]: the logarithm stays finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    yield r * Math.cos(theta);
    yield r * Math.sin(theta);
  }
}

/** σ of the noise: `noiseLevel` times the input's range max(x) − min(x) over all its values. */
export function noiseSigma(input: Float32Array, noiseLevel: number): number {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of input) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return input.length > 0 ? noiseLevel * (hi - lo) : 0;
}

export interface NoiseSettings {
  samples: number;
  /** σ as a fraction of the input's range. */
  noiseLevel: number;
  seed: number;
}

/** The noisy copies x̃_0 … x̃_{samples−1} of an input (a new array each), lazily in order. */
export function* noisyInputs(input: Float32Array, settings: NoiseSettings): Generator<Float32Array> {
  const sigma = noiseSigma(input, settings.noiseLevel);
  const z = gaussians(settings.seed);
  for (let s = 0; s < settings.samples; s++) {
    const noisy = new Float32Array(input.length);
    for (let i = 0; i < input.length; i++) noisy[i] = input[i] + sigma * z.next().value;
    yield noisy;
  }
}
