/**
 * Softmax over logits, computed stably in float64, and the confidence matrix of a set of images
 * (thesis fig. 3-12: row r = softmax of the model's output for image r).
 */
import { invalidArgument, throwIfAborted } from '../errors';
import type { Forward } from './forward';

/** Number of classes of a logits buffer for n rows; throws when it does not divide. */
export function classesOf(logits: Float32Array, n: number): number {
  if (n < 1 || logits.length % n !== 0 || logits.length === 0) {
    throw invalidArgument(`the model returned ${logits.length} logits for ${n} images`);
  }
  return logits.length / n;
}

/** log Σ_j exp(row_j) of row r, stably. */
export function logSumExp(logits: Float32Array, r: number, classes: number): number {
  const o = r * classes;
  let max = -Infinity;
  for (let j = 0; j < classes; j++) if (logits[o + j] > max) max = logits[o + j];
  if (max === -Infinity || !Number.isFinite(max)) return max;
  let sum = 0;
  for (let j = 0; j < classes; j++) sum += Math.exp(logits[o + j] - max);
  return max + Math.log(sum);
}

/** log softmax(row r)[j]. */
export function logSoftmaxAt(logits: Float32Array, r: number, classes: number, j: number): number {
  return logits[r * classes + j] - logSumExp(logits, r, classes);
}

/** Row-wise softmax of [n, classes] logits. */
export function softmaxRows(logits: Float32Array, n: number): Float32Array {
  const classes = classesOf(logits, n);
  const out = new Float32Array(logits.length);
  for (let r = 0; r < n; r++) {
    const lse = logSumExp(logits, r, classes);
    for (let j = 0; j < classes; j++) out[r * classes + j] = Math.exp(logits[r * classes + j] - lse);
  }
  return out;
}

/** Index of the largest value of row r (first one on ties). */
export function argmaxRow(values: Float32Array, r: number, classes: number): number {
  let best = 0;
  for (let j = 1; j < classes; j++) if (values[r * classes + j] > values[r * classes + best]) best = j;
  return best;
}

/** The N×classes softmax matrix of n images [n, C, H, W] in input space. */
export async function confidenceMatrix(
  images: Float32Array,
  n: number,
  forward: Forward,
  signal?: AbortSignal,
): Promise<{ probabilities: Float32Array; classes: number }> {
  if (!Number.isInteger(n) || n < 1 || images.length % n !== 0) {
    throw invalidArgument(`confidence matrix needs n ≥ 1 images filling the buffer; got n = ${n} for ${images.length} values`);
  }
  throwIfAborted(signal);
  const logits = await forward(images, n, signal);
  const classes = classesOf(logits, n);
  return { probabilities: softmaxRows(logits, n), classes };
}
