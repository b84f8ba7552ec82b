/** Classification of a batch: the most probable classes of each image, from its logits. */
import { softmaxRows } from './confidence';

export interface ClassScore {
  classIndex: number;
  className: string;
  probability: number;
  logit: number;
}

export interface ImagePrediction {
  top: ClassScore[];
  /** [classes] */
  logits: Float32Array;
}

/** The `top` most probable classes of each of `n` logit rows (`classNames[k]`, else the index). */
export function rankPredictions(logits: Float32Array, n: number, top: number, classNames: string[]): ImagePrediction[] {
  const classes = logits.length / n;
  const probabilities = softmaxRows(logits, n);
  const keep = Math.min(top, classes);
  const out: ImagePrediction[] = [];
  for (let i = 0; i < n; i++) {
    const p = probabilities.subarray(i * classes, (i + 1) * classes);
    const row = logits.slice(i * classes, (i + 1) * classes);
    const order = Array.from({ length: classes }, (_, k) => k).sort((a, b) => p[b]! - p[a]!);
    out.push({
      top: order.slice(0, keep).map((k) => ({ classIndex: k, className: classNames[k] ?? String(k), probability: p[k]!, logit: row[k]! })),
      logits: row,
    });
  }
  return out;
}
