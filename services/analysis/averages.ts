/**
 * Class-average images (SPEC §1 items 1–2).
 *
 * - mean: the pixel mean of every image of the class. Preprocessing is affine in the pixels (resize,
 *   pad and the per-channel scale are linear), so raw uint8 pixels are summed per class and the mean
 *   is mapped to input space once.
 * - top_k / bottom_k: every image of the class goes through the model; the K with the highest
 *   (lowest) softmax probability of the class are kept in a bounded heap, then read again and
 *   averaged the same way. Ranking uses the log-probability, so saturated probabilities still order.
 * - rescale (SPEC §1.1): per channel, the average's [min, max] is mapped linearly onto the channel's
 *   [min, max] over the images averaged, in input space. On by default for the mean only.
 *
 * Other kinds (activation maximisation) plug into the `kind` switch of `collect`.
 */
import { invalidArgument, throwIfAborted, unimplemented } from '../errors';
import type { Dataset, RawBatch, SplitName } from '../data/dataset';
import { ClassInputRanges } from '../data/input-range';
import { ClassPixelSums } from '../data/pixel-sum';
import { decodeSize, pixelsToInputSpace, toInputSpace, type Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { prefetched } from '../data/prefetch';
import { argmaxRow, classesOf, logSoftmaxAt, softmaxRows } from './confidence';
import type { Forward } from './forward';

export type AverageKind = 'mean' | 'top_k' | 'bottom_k';

export const DEFAULT_K = 100;
/** Images per dataset read when only pixels are summed. */
const SCAN_BATCH = 4096;
/** Images per forward pass. */
const DEFAULT_FORWARD_BATCH = 256;

export interface ClassAveragesArgs {
  dataset: Dataset;
  split: SplitName;
  preprocessing: PreprocessSpec;
  /** The model's input [C, H, W]. */
  inputShape: Shape3;
  forward: Forward;
  kind: AverageKind;
  /** top_k / bottom_k: how many images (default 100; all of the class when it has fewer). */
  k?: number;
  /** Default: on for 'mean', off otherwise. */
  rescale?: boolean;
  /** Class indices, in the order they are yielded; default all. */
  classes?: number[];
  /** Only the first `limit` samples of the split (default all). */
  limit?: number;
  /** Images per forward pass (default 256). */
  batchSize?: number;
  /**
   * mean only: also run every image through the model for `meanConfidence` (default false: the
   * mean is a pure pixel pass and `meanConfidence` is NaN, `imagesScored` 0).
   */
  scoreImages?: boolean;
  signal?: AbortSignal;
}

export interface ClassAverage {
  classIndex: number;
  /** [C, H, W] in the model's input space. */
  image: Float32Array;
  imagesUsed: number;
  /** Mean softmax(class) over the images used (NaN when they were not scored). */
  meanConfidence: number;
  /** How many images `meanConfidence` averages. */
  imagesScored: number;
  /** softmax(class) of the average image itself. */
  averageConfidence: number;
  /** The model's class for the average image. */
  predictedClass: number;
  /** Classes yielded so far (this one included) and in all. */
  done: number;
  total: number;
}

/** What the passes gather per class: pixel sums, input-space ranges, and the scores of the images used. */
interface Collected {
  sums: ClassPixelSums;
  ranges: ClassInputRanges | undefined;
  confidenceSum: Map<number, number>;
  scored: Map<number, number>;
}

interface Plan {
  args: ClassAveragesArgs;
  classes: number[];
  wanted: Set<number>;
  rescale: boolean;
  forwardBatch: number;
  size: [number, number] | undefined;
}

export async function* classAverages(args: ClassAveragesArgs): AsyncGenerator<ClassAverage> {
  const plan = makePlan(args);
  const collected = await collect(plan);
  const [C, H, W] = args.inputShape;
  const plane = H * W;
  const images = new Float32Array(plan.classes.length * C * plane);
  plan.classes.forEach((cls, r) => {
    const mean = collected.sums.mean(cls);
    if (!mean) {
      throw invalidArgument(`class ${cls} ('${args.dataset.summary.classNames[cls]}') has no images in the selected part of split '${args.split}'`);
    }
    const image = images.subarray(r * C * plane, (r + 1) * C * plane);
    pixelsToInputSpace(mean.pixels, 1, mean.height, mean.width, mean.channels, args.preprocessing, args.inputShape, image);
    if (collected.ranges) {
      const { lo, hi } = collected.ranges.range(cls);
      rescaleChannels(image, C, plane, lo, hi);
    }
  });
  const probabilities = await scoreAverages(images, plan);
  const classesOut = probabilities.length / plan.classes.length;
  for (let r = 0; r < plan.classes.length; r++) {
    const cls = plan.classes[r];
    const scored = collected.scored.get(cls) ?? 0;
    yield {
      classIndex: cls,
      image: images.slice(r * C * plane, (r + 1) * C * plane),
      imagesUsed: collected.sums.count(cls),
      meanConfidence: scored > 0 ? collected.confidenceSum.get(cls)! / scored : NaN,
      imagesScored: scored,
      averageConfidence: cls < classesOut ? probabilities[r * classesOut + cls] : 0,
      predictedClass: argmaxRow(probabilities, r, classesOut),
      done: r + 1,
      total: plan.classes.length,
    };
  }
}

function makePlan(args: ClassAveragesArgs): Plan {
  const summary = args.dataset.summary;
  const numClasses = summary.classNames.length;
  const split = summary.splits.find((s) => s.split === args.split);
  if (!split) throw invalidArgument(`dataset '${summary.name}' has no '${args.split}' split`);
  const classes = args.classes && args.classes.length > 0 ? [...new Set(args.classes)] : Array.from({ length: numClasses }, (_, i) => i);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) {
      throw invalidArgument(`class ${c} is out of range: dataset '${summary.name}' has ${numClasses} classes`);
    }
    if (split.perClass[c] === 0) throw invalidArgument(`class ${c} ('${summary.classNames[c]}') has no images in split '${args.split}'`);
  }
  if (args.k !== undefined && (!Number.isInteger(args.k) || args.k < 1)) throw invalidArgument(`k must be a positive integer, got ${args.k}`);
  if (args.limit !== undefined && (!Number.isInteger(args.limit) || args.limit < 0)) {
    throw invalidArgument(`limit must be a non-negative integer, got ${args.limit}`);
  }
  const forwardBatch = args.batchSize ?? DEFAULT_FORWARD_BATCH;
  if (!Number.isInteger(forwardBatch) || forwardBatch < 1) throw invalidArgument(`batch size must be a positive integer, got ${forwardBatch}`);
  return {
    args,
    classes,
    wanted: new Set(classes),
    rescale: args.rescale ?? args.kind === 'mean',
    forwardBatch,
    size: decodeSize(summary, args.preprocessing, args.inputShape),
  };
}

async function collect(plan: Plan): Promise<Collected> {
  const collected: Collected = {
    sums: new ClassPixelSums(plan.classes),
    ranges: plan.rescale ? new ClassInputRanges(plan.classes, plan.args.preprocessing, plan.args.inputShape) : undefined,
    confidenceSum: new Map(),
    scored: new Map(),
  };
  switch (plan.args.kind) {
    case 'mean':
      await meanPass(plan, collected);
      return collected;
    case 'top_k':
    case 'bottom_k':
      await rankedPass(plan, collected);
      return collected;
    default:
      throw unimplemented(`class-average kind '${String(plan.args.kind)}' is not implemented`);
  }
}

/** One pass over the split: pixel sums (and ranges, and scores when asked) of every wanted class. */
async function meanPass(plan: Plan, collected: Collected): Promise<void> {
  const { args } = plan;
  const score = args.scoreImages === true;
  const batches = args.dataset.batches(args.split, {
    batchSize: score ? plan.forwardBatch : SCAN_BATCH,
    limit: args.limit,
    classes: plan.classes,
    size: plan.size,
    signal: args.signal,
  });
  for await (const batch of prefetched(batches)) {
    throwIfAborted(args.signal);
    collected.sums.add(batch);
    collected.ranges?.add(batch);
    if (score) {
      const logits = await args.forward(toInputSpace(batch, args.preprocessing, args.inputShape), batch.n, args.signal);
      const classes = checkedClasses(logits, batch);
      for (let i = 0; i < batch.n; i++) {
        const cls = batch.labels[i];
        if (plan.wanted.has(cls)) addScore(collected, cls, Math.exp(logSoftmaxAt(logits, i, classes, cls)));
      }
    }
  }
}

function addScore(collected: Collected, cls: number, probability: number): void {
  collected.confidenceSum.set(cls, (collected.confidenceSum.get(cls) ?? 0) + probability);
  collected.scored.set(cls, (collected.scored.get(cls) ?? 0) + 1);
}

function checkedClasses(logits: Float32Array, batch: RawBatch): number {
  const classes = classesOf(logits, batch.n);
  for (let i = 0; i < batch.n; i++) {
    if (batch.labels[i] >= classes) {
      throw invalidArgument(`the model has ${classes} outputs but sample ${batch.indices[i]} has label ${batch.labels[i]}`);
    }
  }
  return classes;
}

/** A kept image: its sample index and log softmax(class). */
interface Scored {
  index: number;
  score: number;
}

/**
 * The K best items under `better` (a strict order: score, then lower index), in a binary heap whose
 * root is the worst item kept.
 */
export class BoundedSelection {
  private readonly heap: Scored[] = [];

  constructor(
    private readonly capacity: number,
    private readonly better: (a: Scored, b: Scored) => boolean,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  offer(item: Scored): void {
    const h = this.heap;
    if (h.length < this.capacity) {
      h.push(item);
      let i = h.length - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!this.better(h[parent], h[i])) break;
        [h[parent], h[i]] = [h[i], h[parent]];
        i = parent;
      }
    } else if (this.better(item, h[0])) {
      h[0] = item;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let worst = i;
        if (l < h.length && this.better(h[worst], h[l])) worst = l;
        if (r < h.length && this.better(h[worst], h[r])) worst = r;
        if (worst === i) break;
        [h[worst], h[i]] = [h[i], h[worst]];
        i = worst;
      }
    }
  }

  /** Best first. */
  sorted(): Scored[] {
    return [...this.heap].sort((a, b) => (this.better(a, b) ? -1 : this.better(b, a) ? 1 : 0));
  }
}

const higher = (a: Scored, b: Scored): boolean => a.score > b.score || (a.score === b.score && a.index < b.index);
const lower = (a: Scored, b: Scored): boolean => a.score < b.score || (a.score === b.score && a.index < b.index);

/** Pass 1 scores every image of the wanted classes; pass 2 reads back the K kept per class. */
async function rankedPass(plan: Plan, collected: Collected): Promise<void> {
  const { args } = plan;
  const k = args.k ?? DEFAULT_K;
  const kept = new Map<number, BoundedSelection>();
  for (const c of plan.classes) kept.set(c, new BoundedSelection(k, args.kind === 'top_k' ? higher : lower));
  const batches = args.dataset.batches(args.split, {
    batchSize: plan.forwardBatch,
    limit: args.limit,
    classes: plan.classes,
    size: plan.size,
    signal: args.signal,
  });
  for await (const batch of prefetched(batches)) {
    throwIfAborted(args.signal);
    const logits = await args.forward(toInputSpace(batch, args.preprocessing, args.inputShape), batch.n, args.signal);
    const classes = checkedClasses(logits, batch);
    for (let i = 0; i < batch.n; i++) {
      kept.get(batch.labels[i])?.offer({ index: batch.indices[i], score: logSoftmaxAt(logits, i, classes, batch.labels[i]) });
    }
  }
  const indices: number[] = [];
  for (const [c, selection] of kept) {
    for (const item of selection.sorted()) {
      indices.push(item.index);
      addScore(collected, c, Math.exp(item.score));
    }
  }
  if (indices.length === 0) return;
  indices.sort((a, b) => a - b);
  for await (const batch of prefetched(
    args.dataset.batches(args.split, { batchSize: SCAN_BATCH, indices, size: plan.size, signal: args.signal }),
  )) {
    throwIfAborted(args.signal);
    collected.sums.add(batch);
    collected.ranges?.add(batch);
  }
}

/** Maps each channel's [min, max] onto [lo[c], hi[c]] (a constant channel is left as it is). */
export function rescaleChannels(image: Float32Array, C: number, plane: number, lo: ArrayLike<number>, hi: ArrayLike<number>): void {
  for (let c = 0; c < C; c++) {
    const o = c * plane;
    let min = Infinity;
    let max = -Infinity;
    for (let p = 0; p < plane; p++) {
      const v = image[o + p];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (!(max > min) || !Number.isFinite(lo[c]) || !Number.isFinite(hi[c])) continue;
    const gain = (hi[c] - lo[c]) / (max - min);
    for (let p = 0; p < plane; p++) image[o + p] = lo[c] + (image[o + p] - min) * gain;
  }
}

/** Softmax rows of the averages, forwarded in batches. */
async function scoreAverages(images: Float32Array, plan: Plan): Promise<Float32Array> {
  const n = plan.classes.length;
  const per = images.length / n;
  const parts: Float32Array[] = [];
  for (let start = 0; start < n; start += plan.forwardBatch) {
    throwIfAborted(plan.args.signal);
    const m = Math.min(plan.forwardBatch, n - start);
    const logits = await plan.args.forward(images.slice(start * per, (start + m) * per), m, plan.args.signal);
    parts.push(softmaxRows(logits, m));
  }
  const classes = parts[0].length / Math.min(plan.forwardBatch, n);
  const out = new Float32Array(n * classes);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
