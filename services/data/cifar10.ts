/**
 * CIFAR-10 binary version: records of 1 label byte + 3,072 bytes (R, G, B planes of 32×32).
 * `data_batch_*.bin` (in numeric order) = train, `test_batch.bin` = test; `batches.meta.txt` names the
 * classes, one per line. Labels are scanned once when the set is opened; pixels are read by offset.
 */
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { invalidArgument, throwIfAborted } from '../errors';
import type { BatchOptions, Dataset, DatasetSummary, RawBatch, SplitName } from './dataset';
import { numberedClasses } from './class-names';
import { readRecords, type RecordLayout } from './record-file';
import { chunks, countPerClass, selectSamples } from './selection';
import { checkClasses, checkLabelRange } from './validate';

export const CIFAR_SIDE = 32;
export const CIFAR_PLANE = CIFAR_SIDE * CIFAR_SIDE;
export const CIFAR_RECORD = 1 + 3 * CIFAR_PLANE;

export interface Cifar10Options {
  name: string;
  dir: string;
  displayPath: string;
  classNames?: string[];
}

interface CifarFile {
  layout: RecordLayout;
  shown: string;
  /** Index of this file's first record within the split. */
  first: number;
  count: number;
}

interface CifarSplit {
  split: SplitName;
  files: CifarFile[];
  labels: Uint8Array;
}

export function looksLikeCifar10(files: string[]): boolean {
  return files.some((f) => /^(data_batch_\d+|test_batch)\.bin$/i.test(f));
}

export async function openCifar10(opts: Cifar10Options): Promise<Cifar10Dataset> {
  const files = await fs.promises.readdir(opts.dir);
  const train = files
    .filter((f) => /^data_batch_\d+\.bin$/i.test(f))
    .sort((a, b) => Number(/\d+/.exec(a)![0]) - Number(/\d+/.exec(b)![0]));
  const test = files.filter((f) => /^test_batch\.bin$/i.test(f));
  if (train.length === 0 && test.length === 0) {
    throw invalidArgument(`${opts.displayPath}: no CIFAR-10 batch files (data_batch_N.bin, test_batch.bin)`);
  }
  const splits: CifarSplit[] = [];
  for (const [split, names] of [
    ['train', train],
    ['test', test],
  ] as [SplitName, string[]][]) {
    if (names.length > 0) splits.push(await openSplit(split, names, opts));
  }
  let classNames = opts.classNames && opts.classNames.length > 0 ? opts.classNames : await readMeta(opts);
  if (!classNames) {
    let maxLabel = 0;
    for (const s of splits) for (const l of s.labels) if (l > maxLabel) maxLabel = l;
    classNames = numberedClasses(Math.max(10, maxLabel + 1));
  }
  const summary: DatasetSummary = {
    name: opts.name,
    format: 'cifar10',
    path: opts.displayPath,
    classNames: [...classNames],
    imageShape: [CIFAR_SIDE, CIFAR_SIDE, 3],
    splits: [],
  };
  checkLabelRange(
    summary.classNames.length,
    splits.flatMap((s) => s.files.map((f) => ({ labels: s.labels.subarray(f.first, f.first + f.count), file: f.shown }))),
  );
  checkClasses(
    summary,
    splits.map((s) => ({ labels: s.labels, file: path.join(opts.displayPath, s.split) })),
  );
  summary.splits = splits.map((s) => ({ split: s.split, count: s.labels.length, perClass: countPerClass(s.labels, classNames!.length) }));
  return new Cifar10Dataset(summary, splits);
}

async function readMeta(opts: Cifar10Options): Promise<string[] | undefined> {
  const file = path.join(opts.dir, 'batches.meta.txt');
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const names = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length === 0) throw invalidArgument(`${path.join(opts.displayPath, 'batches.meta.txt')}: names no classes`);
  return names;
}

async function openSplit(split: SplitName, names: string[], opts: Cifar10Options): Promise<CifarSplit> {
  const files: CifarFile[] = [];
  let total = 0;
  for (const name of names) {
    const file = path.join(opts.dir, name);
    const shown = path.join(opts.displayPath, name);
    const { size } = await fs.promises.stat(file);
    if (size === 0 || size % CIFAR_RECORD !== 0) {
      throw invalidArgument(
        `${shown}: ${size} bytes is not a whole number of ${CIFAR_RECORD}-byte CIFAR-10 records (1 label byte + 3,072 pixel bytes); truncated or not CIFAR-10`,
      );
    }
    const count = size / CIFAR_RECORD;
    files.push({ layout: { file, header: 0, recordSize: CIFAR_RECORD }, shown, first: total, count });
    total += count;
  }
  const labels = new Uint8Array(total);
  const perRead = 1024;
  const block = Buffer.allocUnsafe(perRead * CIFAR_RECORD);
  for (const f of files) {
    const handle = await fs.promises.open(f.layout.file, 'r');
    try {
      for (let r = 0; r < f.count; r += perRead) {
        const n = Math.min(perRead, f.count - r);
        const { bytesRead } = await handle.read(block, 0, n * CIFAR_RECORD, r * CIFAR_RECORD);
        if (bytesRead !== n * CIFAR_RECORD) throw invalidArgument(`${f.shown}: short read at record ${r}`);
        for (let i = 0; i < n; i++) labels[f.first + r + i] = block[i * CIFAR_RECORD];
      }
    } finally {
      await handle.close();
    }
  }
  return { split, files, labels };
}

export class Cifar10Dataset implements Dataset {
  constructor(
    readonly summary: DatasetSummary,
    private readonly splits: CifarSplit[],
  ) {}

  async *batches(split: SplitName, opts: BatchOptions): AsyncGenerator<RawBatch> {
    const s = this.splits.find((x) => x.split === split);
    if (!s) throw invalidArgument(`data set '${this.summary.name}' has no '${split}' split`);
    const selection = selectSamples(split, s.labels, opts);
    const handles = new Map<CifarFile, FileHandle>();
    try {
      for (const chunk of chunks(selection, opts.batchSize)) {
        throwIfAborted(opts.signal);
        const records = await this.read(s, chunk, handles);
        yield toBatch(chunk, records, s.labels);
      }
    } finally {
      for (const h of handles.values()) await h.close();
    }
  }

  /** Records of `chunk` (split indices) in order, reading runs that fall in the same file together. */
  private async read(s: CifarSplit, chunk: Int32Array, handles: Map<CifarFile, FileHandle>): Promise<Buffer> {
    const out = Buffer.allocUnsafe(chunk.length * CIFAR_RECORD);
    let start = 0;
    while (start < chunk.length) {
      const file = fileOf(s, chunk[start]);
      let end = start + 1;
      while (end < chunk.length && chunk[end] >= file.first && chunk[end] < file.first + file.count) end++;
      const local = new Int32Array(end - start);
      for (let i = start; i < end; i++) local[i - start] = chunk[i] - file.first;
      let handle = handles.get(file);
      if (!handle) {
        handle = await fs.promises.open(file.layout.file, 'r');
        handles.set(file, handle);
      }
      const data = await readRecords(handle, file.layout, local);
      data.copy(out, start * CIFAR_RECORD);
      start = end;
    }
    return out;
  }
}

function fileOf(s: CifarSplit, index: number): CifarFile {
  for (const f of s.files) if (index >= f.first && index < f.first + f.count) return f;
  throw invalidArgument(`sample index ${index} out of range`);
}

/** Records (label + R, G, B planes) → an HWC RawBatch. */
function toBatch(chunk: Int32Array, records: Buffer, splitLabels: Uint8Array): RawBatch {
  const n = chunk.length;
  const pixels = new Uint8Array(n * CIFAR_PLANE * 3);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = i * CIFAR_RECORD;
    labels[i] = splitLabels[chunk[i]];
    const o = i * CIFAR_PLANE * 3;
    const red = r + 1;
    const green = red + CIFAR_PLANE;
    const blue = green + CIFAR_PLANE;
    for (let p = 0; p < CIFAR_PLANE; p++) {
      const q = o + p * 3;
      pixels[q] = records[red + p];
      pixels[q + 1] = records[green + p];
      pixels[q + 2] = records[blue + p];
    }
  }
  return { n, height: CIFAR_SIDE, width: CIFAR_SIDE, channels: 3, pixels, labels, indices: Array.from(chunk) };
}
