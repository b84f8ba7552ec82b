/**
 * Image folders: `<root>/<train|val|test>/<class>/*.{png,jpg,jpeg}` (names case-insensitive; `val`
 * serves as the test split when there is no `test`). Classes are the class folders sorted by name
 * (code-unit order), the union over the splits. Headers are read when the set is opened; pixels are
 * decoded batch by batch and resized (bilinear) to `opts.size` at decode time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { invalidArgument, throwIfAborted } from '../errors';
import { decodePixels, imageHeader, type DecodedImage, type ImageHeader } from '../images/decode';
import type { BatchOptions, Dataset, DatasetSummary, RawBatch, SplitName } from './dataset';
import { resizeBilinearU8 } from './resize';
import { chunks, countPerClass, selectSamples } from './selection';
import { checkClasses } from './validate';

const IMAGE_EXT = /\.(png|jpe?g)$/i;
/** Bytes read to find an image's header; the whole file is read when the header lies further in. */
const HEADER_PROBE = 64 * 1024;

/** Decodes stored images (e.g. in worker threads, off the event loop); default: decodePixels here. */
export type ImageDecoder = (images: Array<{ bytes: Uint8Array; shown: string }>, signal?: AbortSignal) => Promise<DecodedImage[]>;

export interface ImageFolderOptions {
  name: string;
  dir: string;
  displayPath: string;
  classNames?: string[];
  decode?: ImageDecoder;
}

interface FolderSplit {
  split: SplitName;
  files: string[];
  labels: Int32Array;
  sizes: Int32Array; // [N, 2] height, width
}

/** True when the folder has a train/val/test subfolder (or a link to one). */
export function looksLikeImageFolder(entries: fs.Dirent[]): boolean {
  return entries.some((e) => (e.isDirectory() || e.isSymbolicLink()) && /^(train|val|test)$/i.test(e.name));
}

/** Entries of a folder that are folders or files, following symbolic links. */
async function listEntries(dir: string, want: 'dir' | 'file'): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.promises.readdir(dir, { withFileTypes: true })) {
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const st = await fs.promises.stat(path.join(dir, e.name)).catch(() => undefined);
      isDir = st?.isDirectory() ?? false;
      isFile = st?.isFile() ?? false;
    }
    if (want === 'dir' ? isDir : isFile) out.push(e.name);
  }
  return out;
}

export async function openImageFolder(opts: ImageFolderOptions): Promise<ImageFolderDataset> {
  const top = await listEntries(opts.dir, 'dir');
  const dirOf = (name: string): string | undefined => top.find((e) => e.toLowerCase() === name);
  const splitDirs: [SplitName, string][] = [];
  const train = dirOf('train');
  const test = dirOf('test') ?? dirOf('val');
  if (train) splitDirs.push(['train', train]);
  if (test) splitDirs.push(['test', test]);
  if (splitDirs.length === 0) throw invalidArgument(`${opts.displayPath}: no train/, val/ or test/ folder`);

  const classDirs = new Map<SplitName, string[]>();
  const classSet = new Set<string>();
  for (const [split, dir] of splitDirs) {
    const names = await listEntries(path.join(opts.dir, dir), 'dir');
    if (names.length === 0) throw invalidArgument(`${path.join(opts.displayPath, dir)}: no class folders`);
    classDirs.set(split, names);
    names.forEach((n) => classSet.add(n));
  }
  const folders = [...classSet].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (opts.classNames && opts.classNames.length > 0 && opts.classNames.length !== folders.length) {
    throw invalidArgument(`${opts.displayPath}: ${opts.classNames.length} class names given for ${folders.length} class folders`);
  }
  const classNames = opts.classNames && opts.classNames.length > 0 ? [...opts.classNames] : folders;

  const splits: FolderSplit[] = [];
  let channels: 1 | 3 = 1;
  let common: [number, number] | undefined;
  let varies = false;
  for (const [split, dir] of splitDirs) {
    const files: string[] = [];
    const labels: number[] = [];
    const headers: ImageHeader[] = [];
    for (const name of classDirs.get(split)!) {
      const classDir = path.join(opts.dir, dir, name);
      const images = (await listEntries(classDir, 'file')).filter((f) => IMAGE_EXT.test(f)).sort();
      if (images.length === 0) throw invalidArgument(`${path.join(opts.displayPath, dir, name)}: class folder has no PNG or JPEG images`);
      const label = folders.indexOf(name);
      for (const image of images) {
        const file = path.join(classDir, image);
        files.push(file);
        labels.push(label);
        headers.push(await readHeader(file, path.join(opts.displayPath, dir, name, image)));
      }
    }
    // Samples ordered by class, then file name.
    const order = files.map((_, i) => i).sort((a, b) => labels[a] - labels[b] || (files[a] < files[b] ? -1 : 1));
    const sizes = new Int32Array(order.length * 2);
    order.forEach((i, k) => {
      const h = headers[i];
      sizes[2 * k] = h.height;
      sizes[2 * k + 1] = h.width;
      if (h.channels === 3) channels = 3;
      if (!common) common = [h.height, h.width];
      else if (common[0] !== h.height || common[1] !== h.width) varies = true;
    });
    splits.push({ split, files: order.map((i) => files[i]), labels: Int32Array.from(order.map((i) => labels[i])), sizes });
  }
  const summary: DatasetSummary = {
    name: opts.name,
    format: 'image-folder',
    path: opts.displayPath,
    classNames,
    imageShape: varies || !common ? [0, 0, channels] : [common[0], common[1], channels],
    splits: [],
  };
  checkClasses(
    summary,
    splits.map((s) => ({ labels: s.labels, file: path.join(opts.displayPath, s.split) })),
  );
  summary.splits = splits.map((s) => ({ split: s.split, count: s.labels.length, perClass: countPerClass(s.labels, classNames.length) }));
  return new ImageFolderDataset(summary, splits, opts.dir, opts.decode);
}

async function readHeader(file: string, shown: string): Promise<ImageHeader> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const probe = Buffer.alloc(HEADER_PROBE);
    const { bytesRead } = await handle.read(probe, 0, HEADER_PROBE, 0);
    try {
      return imageHeader(probe.subarray(0, bytesRead), shown);
    } catch (e) {
      if (bytesRead < HEADER_PROBE) throw e;
      return imageHeader(await handle.readFile(), shown);
    }
  } finally {
    await handle.close();
  }
}

export class ImageFolderDataset implements Dataset {
  constructor(
    readonly summary: DatasetSummary,
    private readonly splits: FolderSplit[],
    private readonly dir: string,
    private readonly decode: ImageDecoder = async (images) => images.map((im) => decodePixels(im.bytes, im.shown)),
  ) {}

  /**
   * Decoded batches. Without `opts.size` images keep their stored size; where sizes vary, a batch
   * ends early whenever the size changes (every RawBatch holds one size).
   */
  async *batches(split: SplitName, opts: BatchOptions): AsyncGenerator<RawBatch> {
    const s = this.splits.find((x) => x.split === split);
    if (!s) throw invalidArgument(`data set '${this.summary.name}' has no '${split}' split`);
    if (opts.size && (opts.size.length !== 2 || opts.size.some((v) => !Number.isInteger(v) || v < 1))) {
      throw invalidArgument(`image size must be two positive integers, got ${String(opts.size)}`);
    }
    const selection = selectSamples(split, s.labels, opts);
    const channels = this.summary.imageShape[2];
    for (const chunk of chunks(selection, opts.batchSize)) {
      throwIfAborted(opts.signal);
      const bytes = await Promise.all(Array.from(chunk, (i) => fs.promises.readFile(s.files[i])));
      let start = 0;
      while (start < chunk.length) {
        const [h, w] = opts.size ?? [s.sizes[2 * chunk[start]], s.sizes[2 * chunk[start] + 1]];
        let end = start + 1;
        if (opts.size) end = chunk.length;
        else while (end < chunk.length && s.sizes[2 * chunk[end]] === h && s.sizes[2 * chunk[end] + 1] === w) end++;
        const n = end - start;
        const pixels = new Uint8Array(n * h * w * channels);
        const labels = new Int32Array(n);
        const decoded = await this.decode(
          Array.from({ length: n }, (_, k) => ({
            bytes: bytes[start + k],
            shown: path.join(this.summary.path, path.relative(this.dir, s.files[chunk[start + k]])),
          })),
          opts.signal,
        );
        for (let k = 0; k < n; k++) {
          const idx = chunk[start + k];
          const img = decoded[k];
          const sized = resizeBilinearU8(img.pixels, img.height, img.width, img.channels, h, w);
          const at = k * h * w * channels;
          if (img.channels === channels) pixels.set(sized, at);
          else for (let p = 0; p < h * w; p++) pixels.fill(sized[p], at + p * channels, at + (p + 1) * channels);
          labels[k] = s.labels[idx];
        }
        yield { n, height: h, width: w, channels, pixels, labels, indices: Array.from(chunk.subarray(start, end)) };
        start = end;
      }
    }
  }
}
