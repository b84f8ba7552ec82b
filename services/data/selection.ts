/**
 * Which samples of a split a `batches()` call reads, shared by every reader:
 * `indices` (in that order) if given, else the range [offset, offset + limit) of the split;
 * then only the samples whose label is in `classes`. `batchSize` counts selected samples.
 */
import { invalidArgument } from '../errors';
import type { BatchOptions, SplitName } from './dataset';

export function selectSamples(split: SplitName, labels: Uint8Array | Int32Array, opts: BatchOptions): Int32Array {
  const count = labels.length;
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw invalidArgument(`batch size must be a positive integer, got ${opts.batchSize}`);
  }
  const wanted = opts.classes && opts.classes.length > 0 ? new Set(opts.classes) : undefined;
  const keep = (i: number): boolean => wanted === undefined || wanted.has(labels[i]);
  const out: number[] = [];
  if (opts.indices && opts.indices.length > 0) {
    for (const i of opts.indices) {
      if (!Number.isInteger(i) || i < 0 || i >= count) {
        throw invalidArgument(`sample index ${i} is out of range: split '${split}' has ${count} samples`);
      }
      if (keep(i)) out.push(i);
    }
    return Int32Array.from(out);
  }
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw invalidArgument(`offset must be a non-negative integer, got ${offset}`);
  const limit = opts.limit && opts.limit > 0 ? opts.limit : count;
  const end = Math.min(count, offset + limit);
  if (wanted === undefined) {
    const all = new Int32Array(Math.max(0, end - offset));
    for (let i = 0; i < all.length; i++) all[i] = offset + i;
    return all;
  }
  for (let i = offset; i < end; i++) if (keep(i)) out.push(i);
  return Int32Array.from(out);
}

/** Consecutive chunks of at most `size` entries. */
export function* chunks(selection: Int32Array, size: number): Generator<Int32Array> {
  for (let start = 0; start < selection.length; start += size) yield selection.subarray(start, start + size);
}

/** Per-class counts of a label array. */
export function countPerClass(labels: Uint8Array | Int32Array, classes: number): number[] {
  const perClass = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) perClass[labels[i]]++;
  return perClass;
}
