/**
 * Integrated gradients as a wrapper over any method A (Sundararajan et al. 2017, with A = the plain
 * gradient): IG(x) = (x − x') ⊙ mean_{m=1..M} A(x' + (m/M)(x − x')), a right Riemann sum over M steps.
 */
import { createHash } from 'node:crypto';
import { invalidArgument, throwIfAborted } from '../errors';
import { countParam } from './params';
import { MAX_WRAPPER_COUNT, type Attributor, type WrapperDefinition } from './wrapper';

export interface IntegratedGradientsWrapper {
  kind: 'integrated_gradients';
  /** M; default 32. */
  steps?: number;
  /** x' [C, H, W] in input space; default zeros. */
  baseline?: Float32Array;
}

export const DEFAULT_IG_STEPS = 32;

function wrap(inner: Attributor, w: IntegratedGradientsWrapper, signal?: AbortSignal): Attributor {
  const steps = w.steps ?? DEFAULT_IG_STEPS;
  return async (input) => {
    const size = input.length;
    const baseline = w.baseline ?? new Float32Array(size);
    const delta = new Float32Array(size);
    for (let i = 0; i < size; i++) delta[i] = input[i] - baseline[i];
    let sum: Float64Array | undefined;
    const point = new Float32Array(size);
    for (let m = 1; m <= steps; m++) {
      throwIfAborted(signal);
      const t = m / steps;
      for (let i = 0; i < size; i++) point[i] = baseline[i] + t * delta[i];
      const g = await inner(point);
      sum ??= new Float64Array(g.length);
      for (let i = 0; i < g.length; i++) sum[i] += g[i];
    }
    const out = new Float32Array(sum!.length);
    for (let i = 0; i < out.length; i++) out[i] = (delta[i % size] * sum![i]) / steps;
    return out;
  };
}

export const integratedGradients: WrapperDefinition<IntegratedGradientsWrapper> = {
  kind: 'integrated_gradients',
  resolve(w, { size, field }) {
    const steps = countParam(w.steps, DEFAULT_IG_STEPS, MAX_WRAPPER_COUNT, field('steps'));
    if (w.baseline && w.baseline.length !== size) {
      throw invalidArgument(`${field('baseline')} has ${w.baseline.length} values, the model's input has ${size}`);
    }
    return w.baseline ? { kind: 'integrated_gradients', steps, baseline: w.baseline } : { kind: 'integrated_gradients', steps };
  },
  passes: (w) => w.steps ?? DEFAULT_IG_STEPS,
  // The running sum (float64) and the wrapped method's result.
  rowBytes: (_w, size) => size * (8 + 4),
  wrap,
  key: (w) => ({
    kind: w.kind,
    steps: w.steps ?? DEFAULT_IG_STEPS,
    baseline: w.baseline ? createHash('sha256').update(new Uint8Array(w.baseline.buffer, w.baseline.byteOffset, w.baseline.byteLength)).digest('hex') : 'zeros',
  }),
};
