/**
 * The evaluation images of a pruning sweep, read and preprocessed once: held in memory when they fit a
 * byte budget (every configuration then runs on the same arrays), otherwise read again per
 * configuration with the next batch prefetched. `accuracyOf` counts correct predictions per class.
 */
import type { Dataset, SplitName } from '../data/dataset';
import { decodeSize, toInputSpace, type Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { prefetched } from '../data/prefetch';
import { invalidArgument, throwIfAborted } from '../errors';
import { argmaxRow } from './confidence';

/** 10,000 CIFAR images (3×32×32 float32) are 123 MB; allow twice that by default. */
export const DEFAULT_HELD_BYTES = 256 * 1024 * 1024;

export interface EvalBatch {
  input: Float32Array;
  labels: Int32Array;
  n: number;
}

export interface EvalSetOptions {
  dataset: Dataset;
  split: SplitName;
  preprocessing: PreprocessSpec;
  inputShape: Shape3;
  /** The first `limit` images (0 or absent = all). */
  limit?: number;
  /** Images per engine call; default 1024 (the engine splits a call across its workers). */
  batchSize?: number;
  heldBytes?: number;
  signal?: AbortSignal;
}

export interface EvalSet {
  count: number;
  classes: number;
  /** Whether the preprocessed images are held in memory. */
  held: boolean;
  batches(signal?: AbortSignal): AsyncIterable<EvalBatch>;
}

export async function openEvalSet(opts: EvalSetOptions): Promise<EvalSet> {
  const summary = opts.dataset.summary;
  const split = summary.splits.find((s) => s.split === opts.split);
  if (!split) throw invalidArgument(`split: dataset '${summary.name}' has no ${opts.split} split`);
  const limit = opts.limit && opts.limit > 0 ? opts.limit : 0;
  const count = limit > 0 ? Math.min(limit, split.count) : split.count;
  const batchSize = opts.batchSize ?? 1024;
  const size = decodeSize(summary, opts.preprocessing, opts.inputShape);
  const stream = (signal?: AbortSignal): AsyncIterable<EvalBatch> => ({
    async *[Symbol.asyncIterator]() {
      for await (const b of prefetched(opts.dataset.batches(opts.split, { batchSize, limit: count, size, signal }))) {
        throwIfAborted(signal);
        yield { input: toInputSpace(b, opts.preprocessing, opts.inputShape), labels: b.labels, n: b.n };
      }
    },
  });
  const classes = summary.classNames.length;
  const per = opts.inputShape[0] * opts.inputShape[1] * opts.inputShape[2];
  if (count * per * 4 > (opts.heldBytes ?? DEFAULT_HELD_BYTES)) return { count, classes, held: false, batches: stream };
  const held: EvalBatch[] = [];
  for await (const b of stream(opts.signal)) held.push(b);
  return {
    count,
    classes,
    held: true,
    batches: () => ({
      async *[Symbol.asyncIterator]() {
        yield* held;
      },
    }),
  };
}

export interface Accuracy {
  accuracy: number;
  /** Per dataset class (0 where a class has no image). */
  perClass: number[];
}

/** Tallies argmax predictions against labels, overall and per class. */
export class AccuracyTally {
  private readonly count: Float64Array;
  private readonly correct: Float64Array;

  constructor(classes: number) {
    this.count = new Float64Array(classes);
    this.correct = new Float64Array(classes);
  }

  add(logits: Float32Array, labels: Int32Array, n: number): void {
    const k = logits.length / n;
    for (let i = 0; i < n; i++) {
      const label = labels[i];
      if (label >= this.count.length) throw invalidArgument(`label ${label} is outside the data set's ${this.count.length} classes`);
      this.count[label]++;
      if (argmaxRow(logits, i, k) === label) this.correct[label]++;
    }
  }

  result(): Accuracy {
    let n = 0;
    let c = 0;
    for (let i = 0; i < this.count.length; i++) {
      n += this.count[i];
      c += this.correct[i];
    }
    return { accuracy: n > 0 ? c / n : 0, perClass: Array.from(this.count, (m, i) => (m > 0 ? this.correct[i] / m : 0)) };
  }
}
