/**
 * SmoothGrad as a wrapper over any method A (a noise tunnel; Smilkov et al. 2017, Adebayo et al. 2018):
 * with x̃_s the noisy copies of x (./noise.ts), s = 1..N,
 *   mean:     SmoothGrad   (1/N) Σ_s A(x̃_s)
 *   squared:  SmoothGrad²  (1/N) Σ_s A(x̃_s)²
 *   variance: VarGrad      (1/N) Σ_s A(x̃_s)² − ((1/N) Σ_s A(x̃_s))²   (population variance, float64 sums)
 */
import { invalidArgument, throwIfAborted } from '../errors';
import { noisyInputs } from './noise';
import { countParam, positiveParam } from './params';
import { MAX_WRAPPER_COUNT, type Attributor, type WrapperDefinition } from './wrapper';

export type SmoothGradForm = 'mean' | 'squared' | 'variance';
export const SMOOTHGRAD_FORMS: readonly SmoothGradForm[] = ['mean', 'squared', 'variance'];

export interface SmoothGradWrapper {
  kind: 'smoothgrad';
  /** N; default 50. */
  samples?: number;
  /** σ as a fraction of the input's range max(x) − min(x); default 0.15. */
  noiseLevel?: number;
  /** Default 0. */
  seed?: number;
  /** Default mean. */
  form?: SmoothGradForm;
}

export const SMOOTHGRAD_DEFAULTS = { samples: 50, noiseLevel: 0.15, seed: 0, form: 'mean' } as const;
const MAX_NOISE_LEVEL = 10;

function settings(w: SmoothGradWrapper): Required<SmoothGradWrapper> {
  return {
    kind: 'smoothgrad',
    samples: w.samples ?? SMOOTHGRAD_DEFAULTS.samples,
    noiseLevel: w.noiseLevel ?? SMOOTHGRAD_DEFAULTS.noiseLevel,
    seed: w.seed ?? SMOOTHGRAD_DEFAULTS.seed,
    form: w.form ?? SMOOTHGRAD_DEFAULTS.form,
  };
}

function wrap(inner: Attributor, w: SmoothGradWrapper, signal?: AbortSignal): Attributor {
  const s = settings(w);
  return async (input) => {
    let sum: Float64Array | undefined;
    let sumSq: Float64Array | undefined;
    for (const noisy of noisyInputs(input, s)) {
      throwIfAborted(signal);
      const a = await inner(noisy);
      if (s.form !== 'squared') {
        sum ??= new Float64Array(a.length);
        for (let i = 0; i < a.length; i++) sum[i] += a[i];
      }
      if (s.form !== 'mean') {
        sumSq ??= new Float64Array(a.length);
        for (let i = 0; i < a.length; i++) sumSq[i] += a[i] * a[i];
      }
    }
    const n = s.samples;
    const out = new Float32Array((sum ?? sumSq)!.length);
    if (s.form === 'mean') for (let i = 0; i < out.length; i++) out[i] = sum![i] / n;
    else if (s.form === 'squared') for (let i = 0; i < out.length; i++) out[i] = sumSq![i] / n;
    else {
      for (let i = 0; i < out.length; i++) {
        const mean = sum![i] / n;
        out[i] = Math.max(0, sumSq![i] / n - mean * mean);
      }
    }
    return out;
  };
}

export const smoothGrad: WrapperDefinition<SmoothGradWrapper> = {
  kind: 'smoothgrad',
  resolve(w, { field }) {
    const samples = countParam(w.samples, SMOOTHGRAD_DEFAULTS.samples, MAX_WRAPPER_COUNT, field('samples'));
    const noiseLevel = positiveParam(w.noiseLevel, SMOOTHGRAD_DEFAULTS.noiseLevel, MAX_NOISE_LEVEL, field('noise_level'));
    const seed = w.seed ?? SMOOTHGRAD_DEFAULTS.seed;
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw invalidArgument(`${field('seed')} = ${seed} must be an integer in 0..${0xffffffff}`);
    const form = w.form ?? SMOOTHGRAD_DEFAULTS.form;
    if (!SMOOTHGRAD_FORMS.includes(form)) throw invalidArgument(`${field('form')}: unknown form '${String(form)}' (one of ${SMOOTHGRAD_FORMS.join(', ')})`);
    return { kind: 'smoothgrad', samples, noiseLevel, seed, form };
  },
  passes: (w) => settings(w).samples,
  // Float64 sums (two for the variance) and the wrapped method's result.
  rowBytes: (w, size) => size * ((settings(w).form === 'variance' ? 16 : 8) + 4),
  wrap,
  key: (w) => settings(w),
};
