/**
 * Per-class sums of raw uint8 pixels, the hot loop of class means. Where a batch's pixels are
 * 4-byte aligned and an image is a whole number of words, four pixels are added at once (two 16-bit
 * lanes per 32-bit accumulator, flushed to float64 before a lane can overflow); otherwise one by one.
 */
import { invalidArgument } from '../errors';
import type { RawBatch } from './dataset';

/** 16-bit lanes hold 257 × 255 = 65,535: flush after this many images. */
const LANE_IMAGES = 257;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

class ClassSum {
  total: Float64Array | undefined;
  lanes: Uint32Array | undefined;
  pendingImages = 0;
  count = 0;
  height = 0;
  width = 0;
  channels = 0;
}

export interface MeanImage {
  /** [H, W, C] raw units (0..255). */
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
  count: number;
}

export class ClassPixelSums {
  private readonly sums = new Map<number, ClassSum>();

  constructor(classes: Iterable<number>) {
    for (const c of classes) this.sums.set(c, new ClassSum());
  }

  /** Adds every image of the batch whose label is a tracked class. */
  add(batch: RawBatch): void {
    const size = batch.height * batch.width * batch.channels;
    const px = batch.pixels;
    const wordwise = LITTLE_ENDIAN && size % 4 === 0 && px.byteOffset % 4 === 0;
    const words = wordwise ? new Uint32Array(px.buffer, px.byteOffset, (batch.n * size) / 4) : undefined;
    for (let i = 0; i < batch.n; i++) {
      const s = this.sums.get(batch.labels[i]);
      if (!s) continue;
      this.shape(s, batch, batch.labels[i]);
      if (words) {
        addWords(s.lanes!, words, (i * size) / 4, size / 4);
        if (++s.pendingImages === LANE_IMAGES) flush(s);
      } else {
        const t = s.total!;
        const base = i * size;
        for (let p = 0; p < size; p++) t[p] += px[base + p];
      }
      s.count++;
    }
  }

  count(cls: number): number {
    return this.sums.get(cls)?.count ?? 0;
  }

  /** The mean image of a class (undefined when it has none). */
  mean(cls: number): MeanImage | undefined {
    const s = this.sums.get(cls);
    if (!s || s.count === 0 || !s.total) return undefined;
    flush(s);
    const pixels = new Float32Array(s.total.length);
    for (let p = 0; p < pixels.length; p++) pixels[p] = s.total[p] / s.count;
    return { pixels, height: s.height, width: s.width, channels: s.channels, count: s.count };
  }

  private shape(s: ClassSum, batch: RawBatch, cls: number): void {
    if (!s.total) {
      const size = batch.height * batch.width * batch.channels;
      s.total = new Float64Array(size);
      s.lanes = new Uint32Array(2 * Math.ceil(size / 4));
      s.height = batch.height;
      s.width = batch.width;
      s.channels = batch.channels;
    } else if (batch.height !== s.height || batch.width !== s.width || batch.channels !== s.channels) {
      throw invalidArgument(
        `class ${cls}: images of ${batch.height}×${batch.width}×${batch.channels} and ${s.height}×${s.width}×${s.channels} cannot be averaged`,
      );
    }
  }
}

/** lanes[2k] += bytes 0 and 2 of word k; lanes[2k+1] += bytes 1 and 3 (little-endian lanes). */
function addWords(lanes: Uint32Array, words: Uint32Array, start: number, count: number): void {
  for (let k = 0; k < count; k++) {
    const w = words[start + k];
    lanes[2 * k] += w & 0x00ff00ff;
    lanes[2 * k + 1] += (w >>> 8) & 0x00ff00ff;
  }
}

function flush(s: ClassSum): void {
  const lanes = s.lanes;
  const t = s.total;
  if (!lanes || !t || s.pendingImages === 0) return;
  const words = Math.floor(t.length / 4);
  for (let k = 0; k < words; k++) {
    const even = lanes[2 * k];
    const odd = lanes[2 * k + 1];
    t[4 * k] += even & 0xffff;
    t[4 * k + 2] += even >>> 16;
    t[4 * k + 1] += odd & 0xffff;
    t[4 * k + 3] += odd >>> 16;
    lanes[2 * k] = 0;
    lanes[2 * k + 1] = 0;
  }
  s.pendingImages = 0;
}
