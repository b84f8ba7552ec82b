/**
 * Multinomial logistic regression (softmax regression) fitted in TypeScript: features standardised with
 * the training set's mean and std, loss = mean cross-entropy + (l2 / 2)·‖W‖² (biases unpenalised),
 * minimised full-batch with L-BFGS (two-loop recursion, memory 10, backtracking Armijo line search).
 * Everything is float64.
 */
import { invalidArgument, throwIfAborted } from '../errors';

export interface LogisticOptions {
  /** L2 penalty on the weights; default 1e-4. */
  l2?: number;
  /** L-BFGS iterations (each one full pass over the data plus line-search passes); default 100. */
  iterations?: number;
  /** Stop when the gradient's max-norm falls below this; default 1e-6. */
  tolerance?: number;
  signal?: AbortSignal;
}

export interface LogisticModel {
  features: number;
  classes: number;
  /** Standardisation: x' = (x − mean) / std (std 1 where a feature is constant). */
  mean: Float64Array;
  std: Float64Array;
  /** [classes, features] on standardised features, then [classes] biases. */
  weights: Float64Array;
  bias: Float64Array;
  /** Final training loss (with the penalty) and iterations run. */
  loss: number;
  iterations: number;
}

/** Standardised copy of x [n, d] (float64). */
function standardise(x: ArrayLike<number>, n: number, d: number, mean: Float64Array, std: Float64Array): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - mean[j]) / std[j];
  return out;
}

/** Loss and gradient for parameters θ = [W (k×d), b (k)] on standardised xs. */
function lossAndGradient(theta: Float64Array, xs: Float64Array, y: ArrayLike<number>, n: number, d: number, k: number, l2: number, grad: Float64Array): number {
  grad.fill(0);
  const logits = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = i * d;
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = theta[k * d + c];
      const w = c * d;
      for (let j = 0; j < d; j++) z += theta[w + j] * xs[row + j];
      logits[c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logits[c] - max);
    const lse = max + Math.log(sum);
    loss += lse - logits[y[i]];
    for (let c = 0; c < k; c++) {
      const g = (Math.exp(logits[c] - lse) - (c === y[i] ? 1 : 0)) / n;
      if (g === 0) continue;
      const w = c * d;
      for (let j = 0; j < d; j++) grad[w + j] += g * xs[row + j];
      grad[k * d + c] += g;
    }
  }
  loss /= n;
  let penalty = 0;
  for (let p = 0; p < k * d; p++) {
    penalty += theta[p] * theta[p];
    grad[p] += l2 * theta[p];
  }
  return loss + (l2 / 2) * penalty;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Fits on x [n, d] with labels y in 0..classes−1. */
/**
 * Async so that a long fit lets the event loop turn (health checks, other streams, cancellation)
 * between L-BFGS iterations.
 */
export async function fitLogistic(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  classes: number,
  opts: LogisticOptions = {},
): Promise<LogisticModel> {
  if (n < 1 || d < 1 || x.length !== n * d || y.length !== n) throw invalidArgument(`logistic regression: x must be [${n}, ${d}] with ${n} labels`);
  if (!Number.isInteger(classes) || classes < 2) throw invalidArgument(`logistic regression needs at least 2 classes, got ${classes}`);
  for (let i = 0; i < n; i++) if (!(Number.isInteger(y[i]) && y[i] >= 0 && y[i] < classes)) throw invalidArgument(`label ${y[i]} of sample ${i} is outside 0..${classes - 1}`);
  const l2 = opts.l2 ?? 1e-4;
  if (!(l2 >= 0)) throw invalidArgument(`l2 must be ≥ 0, got ${l2}`);
  const maxIter = opts.iterations ?? 100;
  const tol = opts.tolerance ?? 1e-6;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) std[j] += (x[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = std[j] > 1e-24 ? Math.sqrt(std[j]) : 1;
  const xs = standardise(x, n, d, mean, std);

  const k = classes;
  const size = k * d + k;
  let theta = new Float64Array(size);
  let grad = new Float64Array(size);
  let loss = lossAndGradient(theta, xs, y, n, d, k, l2, grad);
  const memory = 10;
  const sList: Float64Array[] = [];
  const yList: Float64Array[] = [];
  const rho: number[] = [];
  let iter = 0;
  for (; iter < maxIter; iter++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(opts.signal);
    if (grad.reduce((m, g) => Math.max(m, Math.abs(g)), 0) < tol) break;
    // two-loop recursion: direction = −H·grad
    const q = Float64Array.from(grad);
    const alpha = new Array<number>(sList.length);
    for (let m = sList.length - 1; m >= 0; m--) {
      alpha[m] = rho[m] * dot(sList[m], q);
      for (let p = 0; p < size; p++) q[p] -= alpha[m] * yList[m][p];
    }
    const last = sList.length - 1;
    const gamma = last >= 0 ? dot(sList[last], yList[last]) / dot(yList[last], yList[last]) : 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
    for (let p = 0; p < size; p++) q[p] *= gamma;
    for (let m = 0; m < sList.length; m++) {
      const beta = rho[m] * dot(yList[m], q);
      for (let p = 0; p < size; p++) q[p] += sList[m][p] * (alpha[m] - beta);
    }
    let slope = -dot(grad, q);
    if (!(slope < 0)) {
      // not a descent direction: restart from steepest descent
      sList.length = yList.length = rho.length = 0;
      for (let p = 0; p < size; p++) q[p] = grad[p] / Math.max(1, Math.sqrt(dot(grad, grad)));
      slope = -dot(grad, q);
    }
    let step = 1;
    const next = new Float64Array(size);
    const nextGrad = new Float64Array(size);
    let nextLoss = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let p = 0; p < size; p++) next[p] = theta[p] - step * q[p];
      nextLoss = lossAndGradient(next, xs, y, n, d, k, l2, nextGrad);
      if (nextLoss <= loss + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(nextLoss < loss)) break; // no progress possible at float64 precision
    const s = new Float64Array(size);
    const yy = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      s[p] = next[p] - theta[p];
      yy[p] = nextGrad[p] - grad[p];
    }
    const sy = dot(s, yy);
    if (sy > 1e-12) {
      sList.push(s);
      yList.push(yy);
      rho.push(1 / sy);
      if (sList.length > memory) {
        sList.shift();
        yList.shift();
        rho.shift();
      }
    }
    theta = next;
    grad = nextGrad;
    loss = nextLoss;
  }
  return { features: d, classes: k, mean, std, weights: theta.slice(0, k * d), bias: theta.slice(k * d), loss, iterations: iter };
}

/** Class probabilities [n, classes] for x [n, d]. */
export function predictProba(m: LogisticModel, x: ArrayLike<number>, n: number): Float64Array {
  const { features: d, classes: k } = m;
  if (x.length !== n * d) throw invalidArgument(`logistic regression: x must be [${n}, ${d}]`);
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let z = m.bias[c];
      for (let j = 0; j < d; j++) z += m.weights[c * d + j] * ((x[i * d + j] - m.mean[j]) / m.std[j]);
      out[i * k + c] = z;
      if (z > max) max = z;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[i * k + c] = Math.exp(out[i * k + c] - max);
    for (let c = 0; c < k; c++) out[i * k + c] /= sum;
  }
  return out;
}

/** Predicted class per row. */
export function predictClass(m: LogisticModel, x: ArrayLike<number>, n: number): Int32Array {
  const p = predictProba(m, x, n);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < m.classes; c++) if (p[i * m.classes + c] > p[i * m.classes + best]) best = c;
    out[i] = best;
  }
  return out;
}
