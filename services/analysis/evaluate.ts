/**
 * Accuracy and softmax cross-entropy of a model on a dataset split, overall and per class.
 * Pipelined: while batch i is in the model, batch i+1 is read and preprocessed.
 */
import { invalidArgument, throwIfAborted } from '../errors';
import type { Dataset, RawBatch, SplitName } from '../data/dataset';
import { decodeSize, toInputSpace, type Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { prefetched } from '../data/prefetch';
import { argmaxRow, classesOf, logSumExp } from './confidence';
import type { Forward } from './forward';

export const DEFAULT_EVAL_BATCH = 256;

export interface EvaluateArgs {
  dataset: Dataset;
  split: SplitName;
  preprocessing: PreprocessSpec;
  inputShape: Shape3;
  forward: Forward;
  /** At most this many images: the first `limit` of the split (0 or absent = all). */
  limit?: number;
  batchSize?: number;
  signal?: AbortSignal;
}

export interface ClassEvaluation {
  count: number;
  correct: number;
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
}

export interface EvaluationResult extends ClassEvaluation {
  /** Indexed by the dataset's class. */
  perClass: ClassEvaluation[];
  seconds: number;
  imagesPerSecond: number;
}

/** One per batch; the last one carries the result. */
export interface EvaluateUpdate {
  progress: { done: number; total: number };
  result?: EvaluationResult;
}

export async function* evaluate(args: EvaluateArgs): AsyncGenerator<EvaluateUpdate> {
  const started = performance.now();
  const summary = args.dataset.summary;
  const split = summary.splits.find((s) => s.split === args.split);
  if (!split) throw invalidArgument(`dataset '${summary.name}' has no '${args.split}' split`);
  const batchSize = args.batchSize && args.batchSize > 0 ? args.batchSize : DEFAULT_EVAL_BATCH;
  if (!Number.isInteger(batchSize)) throw invalidArgument(`batch size must be a positive integer, got ${args.batchSize}`);
  const limit = args.limit && args.limit > 0 ? args.limit : 0;
  const total = limit > 0 ? Math.min(limit, split.count) : split.count;
  const numClasses = summary.classNames.length;
  const count = new Float64Array(numClasses);
  const correct = new Float64Array(numClasses);
  const loss = new Float64Array(numClasses);

  const batches = prefetched(
    args.dataset.batches(args.split, {
      batchSize,
      limit: limit || undefined,
      size: decodeSize(summary, args.preprocessing, args.inputShape),
      signal: args.signal,
    }),
  );
  const iterator = batches[Symbol.asyncIterator]();
  let done = 0;
  try {
    let current = await iterator.next();
    let input = current.done ? undefined : toInputSpace(current.value, args.preprocessing, args.inputShape);
    while (!current.done && input) {
      throwIfAborted(args.signal);
      const batch: RawBatch = current.value;
      const running = args.forward(input, batch.n, args.signal);
      running.catch(() => undefined); // awaited below; this only keeps an early exit from leaving it unhandled
      const following = await iterator.next();
      const nextInput = following.done ? undefined : toInputSpace(following.value, args.preprocessing, args.inputShape);
      const logits = await running;
      const classes = classesOf(logits, batch.n);
      for (let i = 0; i < batch.n; i++) {
        const label = batch.labels[i];
        if (label >= classes) throw invalidArgument(`the model has ${classes} outputs but sample ${batch.indices[i]} has label ${label}`);
        count[label]++;
        loss[label] += logSumExp(logits, i, classes) - logits[i * classes + label];
        if (argmaxRow(logits, i, classes) === label) correct[label]++;
      }
      done += batch.n;
      current = following;
      input = nextInput;
      if (!current.done) yield { progress: { done, total } };
    }
  } finally {
    await iterator.return(undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  const sum = (a: Float64Array): number => a.reduce((s, v) => s + v, 0);
  const n = sum(count);
  yield {
    progress: { done, total },
    result: {
      ...stats(n, sum(correct), sum(loss)),
      perClass: Array.from(count, (c, i) => stats(c, correct[i], loss[i])),
      seconds,
      imagesPerSecond: seconds > 0 ? n / seconds : 0,
    },
  };
}

function stats(count: number, correct: number, lossSum: number): ClassEvaluation {
  return { count, correct, accuracy: count > 0 ? correct / count : 0, loss: count > 0 ? lossSum / count : 0 };
}
