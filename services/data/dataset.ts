/**
 * Labelled image data sets. Readers (idx, cifar10, image-folder) implement `Dataset`; they stream
 * batches and never need the whole set in memory.
 */
export type SplitName = 'train' | 'test';
export type DatasetFormatName = 'idx' | 'cifar10' | 'image-folder';

export interface SplitSummary {
  split: SplitName;
  count: number;
  perClass: number[];
}

export interface DatasetSummary {
  name: string;
  format: DatasetFormatName;
  /** Path relative to the data root. */
  path: string;
  classNames: string[];
  /** [H, W, C] as stored; [0, 0, C] where images vary in size (image folders). */
  imageShape: [number, number, number];
  splits: SplitSummary[];
  /**
   * Content identity (./identity.ts), set when the data set is registered: result caches key a data set
   * by it, as they key a model by its sha256.
   */
  identity?: string;
}

/** Raw pixels as stored, HWC uint8, N images of one size. */
export interface RawBatch {
  n: number;
  height: number;
  width: number;
  channels: number;
  pixels: Uint8Array; // [N, H, W, C]
  labels: Int32Array; // [N]
  indices: number[]; // sample index within the split
}

export interface BatchOptions {
  batchSize: number;
  /** Only these sample indices, in this order. */
  indices?: number[];
  offset?: number;
  limit?: number;
  /** Only samples whose label is one of these. */
  classes?: number[];
  /** Image folders: decode and resize every image to this size (H, W). Fixed-size formats ignore it. */
  size?: [number, number];
  signal?: AbortSignal;
}

export interface Dataset {
  readonly summary: DatasetSummary;
  batches(split: SplitName, opts: BatchOptions): AsyncIterable<RawBatch>;
}
