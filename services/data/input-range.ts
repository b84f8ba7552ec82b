/**
 * Per-class, per-channel [min, max] of images in the model's input space (for the rescale of class
 * averages, SPEC §1.1). Where the fit only selects pixels, ranges are kept in raw units over the
 * fit's window and mapped once (the map is monotone per channel); a class whose raw range is already
 * [0, 255] is skipped. Otherwise (resize, RGB → grey) the batch is mapped and scanned.
 */
import type { RawBatch } from './dataset';
import { affineMap, selectionFit, toInputSpace, type Shape3, type SelectionFit } from './preprocess';
import type { PreprocessSpec } from './preprocessing';

class ClassRange {
  /** Raw channel ranges over the fit window (selection fits). */
  rawLo: Int32Array | undefined;
  rawHi: Int32Array | undefined;
  saturated = false;
  padded = false;
  /** Input-space channel ranges (other fits). */
  readonly lo: Float64Array;
  readonly hi: Float64Array;

  constructor(channels: number) {
    this.lo = new Float64Array(channels).fill(Infinity);
    this.hi = new Float64Array(channels).fill(-Infinity);
  }
}

export class ClassInputRanges {
  private readonly ranges = new Map<number, ClassRange>();
  private fitCache: { key: string; fit: SelectionFit | undefined } | undefined;
  private source: number[] = [];

  constructor(
    classes: Iterable<number>,
    private readonly spec: PreprocessSpec,
    private readonly inputShape: Shape3,
  ) {
    for (const c of classes) this.ranges.set(c, new ClassRange(inputShape[0]));
  }

  add(batch: RawBatch): void {
    const fit = this.selection(batch);
    if (fit) {
      this.addRaw(batch, fit);
      return;
    }
    const [C, H, W] = this.inputShape;
    const plane = H * W;
    const inputs = toInputSpace(batch, this.spec, this.inputShape);
    for (let i = 0; i < batch.n; i++) {
      const r = this.ranges.get(batch.labels[i]);
      if (!r) continue;
      for (let c = 0; c < C; c++) {
        const o = (i * C + c) * plane;
        let lo = r.lo[c];
        let hi = r.hi[c];
        for (let p = 0; p < plane; p++) {
          const v = inputs[o + p];
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        r.lo[c] = lo;
        r.hi[c] = hi;
      }
    }
  }

  /** Input-space [lo, hi] per model channel of a class (±Infinity when it saw no image). */
  range(cls: number): { lo: Float64Array; hi: Float64Array } {
    const r = this.ranges.get(cls);
    const C = this.inputShape[0];
    const lo = new Float64Array(C).fill(Infinity);
    const hi = new Float64Array(C).fill(-Infinity);
    if (!r) return { lo, hi };
    const { gain, offset } = affineMap(this.spec, C);
    for (let c = 0; c < C; c++) {
      lo[c] = r.lo[c];
      hi[c] = r.hi[c];
      if (r.rawLo && r.rawHi) {
        const s = this.source[c];
        const a = r.rawLo[s] * gain[c] + offset[c];
        const b = r.rawHi[s] * gain[c] + offset[c];
        lo[c] = Math.min(lo[c], a, b);
        hi[c] = Math.max(hi[c], a, b);
        if (r.padded) {
          lo[c] = Math.min(lo[c], offset[c]);
          hi[c] = Math.max(hi[c], offset[c]);
        }
      }
    }
    return { lo, hi };
  }

  private selection(batch: RawBatch): SelectionFit | undefined {
    const key = `${batch.height}x${batch.width}x${batch.channels}`;
    if (this.fitCache?.key !== key) {
      const fit = selectionFit(batch.height, batch.width, batch.channels, this.spec, this.inputShape);
      this.fitCache = { key, fit };
      if (fit) this.source = fit.source;
    }
    return this.fitCache.fit;
  }

  private addRaw(batch: RawBatch, fit: SelectionFit): void {
    const { width: w, channels: c, pixels } = batch;
    const size = batch.height * w * c;
    for (let i = 0; i < batch.n; i++) {
      const r = this.ranges.get(batch.labels[i]);
      if (!r) continue;
      if (!r.rawLo || !r.rawHi) {
        r.rawLo = new Int32Array(c).fill(256);
        r.rawHi = new Int32Array(c).fill(-1);
      }
      if (fit.padded) r.padded = true;
      if (r.saturated) continue;
      const lo = r.rawLo;
      const hi = r.rawHi;
      const base = i * size;
      for (let y = fit.y0; y < fit.y1; y++) {
        const row = base + (y * w + fit.x0) * c;
        const end = base + (y * w + fit.x1) * c;
        for (let k = 0; k < c; k++) {
          let l = lo[k];
          let h = hi[k];
          for (let p = row + k; p < end; p += c) {
            const v = pixels[p];
            if (v < l) l = v;
            if (v > h) h = v;
          }
          lo[k] = l;
          hi[k] = h;
        }
      }
      let saturated = true;
      for (let k = 0; k < c; k++) if (lo[k] !== 0 || hi[k] !== 255) saturated = false;
      r.saturated = saturated;
    }
  }
}
