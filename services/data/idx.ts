/**
 * MNIST-style IDX data sets: `<prefix>-images-idx3-ubyte` + `<prefix>-labels-idx1-ubyte` per split
 * (also `.idx3-ubyte` spellings and `.gz`), train prefix "train", test prefix "t10k" by default.
 * Raw files are read by offset; .gz files by streaming decompression. Labels (1 byte per sample) are
 * kept in memory; images never are.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidArgument, throwIfAborted } from '../errors';
import type { BatchOptions, Dataset, DatasetSummary, RawBatch, SplitName } from './dataset';
import { FASHION_MNIST_CLASSES, numberedClasses } from './class-names';
import { gunzipPrefix, gzipTrailerSize, gzRecordBlocks, readRecords, type RecordLayout } from './record-file';
import { chunks, countPerClass, selectSamples } from './selection';
import { checkClasses } from './validate';

export interface IdxOptions {
  name: string;
  /** Absolute folder holding the files. */
  dir: string;
  /** How the summary names the folder (relative to the data root, or builtin:…). */
  displayPath: string;
  classNames?: string[];
  trainPrefix?: string;
  testPrefix?: string;
}

interface IdxSplit {
  split: SplitName;
  images: RecordLayout;
  gz: boolean;
  labels: Uint8Array;
}

const IMAGE_MAGIC_TYPE = 0x08; // unsigned byte

/** True when the folder holds at least one IDX image file. */
export function looksLikeIdx(files: string[]): boolean {
  return files.some((f) => /[-.]idx[34]-ubyte(\.gz)?$/i.test(f));
}

export async function openIdx(opts: IdxOptions): Promise<IdxDataset> {
  const files = await fs.promises.readdir(opts.dir);
  const prefixes: [SplitName, string][] = [
    ['train', opts.trainPrefix || 'train'],
    ['test', opts.testPrefix || 't10k'],
  ];
  const splits: IdxSplit[] = [];
  let shape: [number, number, number] | undefined;
  for (const [split, prefix] of prefixes) {
    const imagesFile = findFile(files, prefix, 'images', ['idx3', 'idx4']);
    const labelsFile = findFile(files, prefix, 'labels', ['idx1']);
    if (!imagesFile && !labelsFile) continue;
    if (!imagesFile || !labelsFile) {
      const missing = !imagesFile ? `${prefix}-images-idx3-ubyte` : `${prefix}-labels-idx1-ubyte`;
      throw invalidArgument(`${path.join(opts.displayPath, (imagesFile ?? labelsFile)!)}: no matching ${missing}[.gz] beside it`);
    }
    const opened = await openSplit(split, path.join(opts.dir, imagesFile), path.join(opts.dir, labelsFile), opts.displayPath);
    if (shape && (shape[0] !== opened.shape[0] || shape[1] !== opened.shape[1] || shape[2] !== opened.shape[2])) {
      throw invalidArgument(`${path.join(opts.displayPath, imagesFile)}: images are ${opened.shape.join('×')}, the other split's are ${shape.join('×')}`);
    }
    shape = opened.shape;
    splits.push(opened.split);
  }
  if (splits.length === 0 || !shape) {
    throw invalidArgument(
      `${opts.displayPath}: no IDX files found (expected ${prefixes.map(([, p]) => `${p}-images-idx3-ubyte[.gz]`).join(' and/or ')})`,
    );
  }
  let maxLabel = 0;
  for (const s of splits) for (let i = 0; i < s.labels.length; i++) if (s.labels[i] > maxLabel) maxLabel = s.labels[i];
  const classNames =
    opts.classNames && opts.classNames.length > 0
      ? opts.classNames
      : /fashion/i.test(opts.dir) && maxLabel < 10
        ? FASHION_MNIST_CLASSES
        : numberedClasses(Math.max(10, maxLabel + 1));
  const summary: DatasetSummary = {
    name: opts.name,
    format: 'idx',
    path: opts.displayPath,
    classNames: [...classNames],
    imageShape: shape,
    splits: splits.map((s) => ({ split: s.split, count: s.labels.length, perClass: [] })),
  };
  checkClasses(
    summary,
    splits.map((s) => ({ labels: s.labels, file: displayOf(opts, s.split) })),
  );
  splits.forEach((s, i) => (summary.splits[i].perClass = countPerClass(s.labels, classNames.length)));
  return new IdxDataset(summary, splits);

  function displayOf(o: IdxOptions, split: SplitName): string {
    const prefix = split === 'train' ? o.trainPrefix || 'train' : o.testPrefix || 't10k';
    return path.join(o.displayPath, findFile(files, prefix, 'labels', ['idx1']) ?? prefix);
  }
}

function findFile(files: string[], prefix: string, kind: string, types: string[]): string | undefined {
  for (const t of types) {
    for (const sep of ['-', '.']) {
      const base = `${prefix}-${kind}${sep}${t}-ubyte`;
      for (const name of [base, `${base}.gz`]) {
        const found = files.find((f) => f.toLowerCase() === name.toLowerCase());
        if (found) return found;
      }
    }
  }
  return undefined;
}

async function readHeader(file: string, gz: boolean, bytes: number): Promise<Buffer> {
  if (gz) return gunzipPrefix(file, bytes);
  const handle = await fs.promises.open(file, 'r');
  try {
    const b = Buffer.alloc(bytes);
    const { bytesRead } = await handle.read(b, 0, bytes, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Parses an IDX header: magic (0, 0, type, dims) then dims big-endian uint32 sizes. */
function parseHeader(b: Buffer, shown: string, wantDims: number[]): number[] {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0 || b[2] !== IMAGE_MAGIC_TYPE || !wantDims.includes(b[3])) {
    const magic = b.length >= 4 ? b.readUInt32BE(0).toString(16).padStart(8, '0') : 'none';
    throw invalidArgument(
      `${shown}: not an IDX unsigned-byte file with ${wantDims.join(' or ')} dimensions (magic 0x${magic}, expected 0x000008${wantDims[0].toString(16).padStart(2, '0')})`,
    );
  }
  const dims = b[3];
  if (b.length < 4 + 4 * dims) throw invalidArgument(`${shown}: file is truncated inside its header`);
  const sizes: number[] = [];
  for (let d = 0; d < dims; d++) sizes.push(b.readUInt32BE(4 + 4 * d));
  return sizes;
}

async function checkSize(file: string, gz: boolean, expected: number, shown: string): Promise<void> {
  if (gz) {
    const isize = await gzipTrailerSize(file);
    if (isize !== expected % 2 ** 32) {
      throw invalidArgument(`${shown}: decompressed size ${isize} does not match its header (${expected} bytes); the file is truncated or corrupt`);
    }
    return;
  }
  const { size } = await fs.promises.stat(file);
  if (size !== expected) {
    throw invalidArgument(`${shown}: ${size} bytes but its header announces ${expected}${size < expected ? ' (truncated)' : ''}`);
  }
}

async function openSplit(
  split: SplitName,
  imagesFile: string,
  labelsFile: string,
  displayPath: string,
): Promise<{ split: IdxSplit; shape: [number, number, number] }> {
  const shownImages = path.join(displayPath, path.basename(imagesFile));
  const shownLabels = path.join(displayPath, path.basename(labelsFile));
  const imagesGz = imagesFile.toLowerCase().endsWith('.gz');
  const labelsGz = labelsFile.toLowerCase().endsWith('.gz');

  const dims = parseHeader(await readHeader(imagesFile, imagesGz, 20), shownImages, [3, 4]);
  const [count, height, width] = dims;
  const channels = dims.length === 4 ? dims[3] : 1;
  if (count === 0 || height === 0 || width === 0 || channels === 0) throw invalidArgument(`${shownImages}: empty (shape ${dims.join('×')})`);
  if (channels !== 1 && channels !== 3) throw invalidArgument(`${shownImages}: ${channels} channels per pixel; only 1 or 3 are supported`);
  const header = 4 + 4 * dims.length;
  const recordSize = height * width * channels;
  await checkSize(imagesFile, imagesGz, header + count * recordSize, shownImages);

  const labelBytes = labelsGz ? await gunzipPrefix(labelsFile, 8 + count + 1) : await fs.promises.readFile(labelsFile);
  const [labelCount] = parseHeader(labelBytes, shownLabels, [1]);
  if (labelCount !== count) throw invalidArgument(`${shownLabels}: ${labelCount} labels for ${count} images in ${path.basename(imagesFile)}`);
  if (labelBytes.length !== 8 + count) {
    throw invalidArgument(`${shownLabels}: ${labelBytes.length - 8} label bytes but its header announces ${count}`);
  }
  const labels = new Uint8Array(count);
  labels.set(labelBytes.subarray(8, 8 + count));
  return {
    split: { split, gz: imagesGz, labels, images: { file: imagesFile, header, recordSize } },
    shape: [height, width, channels],
  };
}

/** Largest number of records one pass over a .gz file collects for an unordered selection. */
const GZ_WINDOW = 4096;

export class IdxDataset implements Dataset {
  constructor(
    readonly summary: DatasetSummary,
    private readonly splits: IdxSplit[],
  ) {}

  async *batches(split: SplitName, opts: BatchOptions): AsyncGenerator<RawBatch> {
    const s = this.splits.find((x) => x.split === split);
    if (!s) throw invalidArgument(`data set '${this.summary.name}' has no '${split}' split`);
    const selection = selectSamples(split, s.labels, opts);
    if (selection.length === 0) return;
    if (s.gz) {
      yield* this.gzBatches(s, selection, opts);
      return;
    }
    const handle = await fs.promises.open(s.images.file, 'r');
    try {
      for (const chunk of chunks(selection, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const data = await readRecords(handle, s.images, chunk);
        yield this.batch(s, chunk, data);
      }
    } finally {
      await handle.close();
    }
  }

  private batch(s: IdxSplit, chunk: Int32Array, data: Uint8Array): RawBatch {
    const [height, width, channels] = this.summary.imageShape;
    const labels = new Int32Array(chunk.length);
    for (let i = 0; i < chunk.length; i++) labels[i] = s.labels[chunk[i]];
    return {
      n: chunk.length,
      height,
      width,
      channels,
      pixels: new Uint8Array(data.buffer, data.byteOffset, chunk.length * s.images.recordSize),
      labels,
      indices: Array.from(chunk),
    };
  }

  /** .gz: one streaming pass for an ascending selection, else one pass per window of it. */
  private async *gzBatches(s: IdxSplit, selection: Int32Array, opts: BatchOptions): AsyncGenerator<RawBatch> {
    let ascending = true;
    for (let i = 1; i < selection.length && ascending; i++) if (selection[i] <= selection[i - 1]) ascending = false;
    const windows = ascending ? [selection] : [...chunks(selection, Math.max(GZ_WINDOW, opts.batchSize))];
    const size = s.images.recordSize;
    for (const window of windows) {
      const sorted = ascending ? window : Int32Array.from(window).sort();
      const slots = new Map<number, Buffer>();
      let pending = Buffer.allocUnsafe(Math.min(opts.batchSize, window.length) * size);
      let filled = 0;
      let emitted = 0;
      let cursor = 0;
      for await (const block of gzRecordBlocks(s.images, sorted[sorted.length - 1] + 1, opts.signal)) {
        const end = block.first + block.count;
        while (cursor < sorted.length && sorted[cursor] < end) {
          const idx = sorted[cursor++];
          const at = (idx - block.first) * size;
          if (ascending) {
            block.data.copy(pending, filled * size, at, at + size);
            filled++;
            if (filled === pending.length / size) {
              const chunk = window.subarray(emitted, emitted + filled);
              yield this.batch(s, chunk, pending);
              emitted += filled;
              filled = 0;
              pending = Buffer.allocUnsafe(Math.min(opts.batchSize, window.length - emitted) * size);
            }
          } else if (!slots.has(idx)) {
            slots.set(idx, Buffer.from(block.data.subarray(at, at + size)));
          }
        }
        if (cursor >= sorted.length) break;
      }
      if (!ascending) {
        for (const chunk of chunks(window, opts.batchSize)) {
          throwIfAborted(opts.signal);
          const data = Buffer.allocUnsafe(chunk.length * size);
          chunk.forEach((idx, i) => slots.get(idx)!.copy(data, i * size));
          yield this.batch(s, chunk, data);
        }
      }
    }
  }
}
