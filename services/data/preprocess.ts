/**
 * Raw pixels (HWC uint8, or float means of them) → the model's input space (CHW float32), and back
 * for display. The whole map is affine in the pixels: fit (bilinear resize, or zero-pad / centre-crop
 * with raw 0 = black as the padding), channel conversion (grey → RGB replication, RGB → grey
 * luminance, channel order), then x = (p · scale − mean[c]) / std[c]. Averaging raw pixels and mapping
 * once therefore equals mapping every image and averaging.
 */
import { invalidArgument } from '../errors';
import type { RawBatch } from './dataset';
import type { PreprocessSpec } from './preprocessing';
import { axisTaps, type AxisTaps } from './resize';

export type Shape3 = [number, number, number];

/** ITU-R BT.601 luma weights (what PIL's convert('L') uses). */
export const LUMA_WEIGHTS: readonly [number, number, number] = [0.299, 0.587, 0.114];

/** Per model channel c: x = p · gain[c] + offset[c]. */
export interface AffineMap {
  gain: Float64Array;
  offset: Float64Array;
}

/** Validates the spec against the model's channel count and folds it into a per-channel affine map. */
export function affineMap(spec: PreprocessSpec, channels: number): AffineMap {
  const scale = spec.scale;
  if (!Number.isFinite(scale) || scale === 0) throw invalidArgument(`preprocessing scale must be a non-zero number, got ${scale}`);
  const mean = perChannel(spec.mean, channels, 0, 'mean');
  const std = perChannel(spec.std, channels, 1, 'std');
  const gain = new Float64Array(channels);
  const offset = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    if (!Number.isFinite(std[c]) || std[c] === 0) throw invalidArgument(`preprocessing std[${c}] must be non-zero, got ${std[c]}`);
    gain[c] = scale / std[c];
    offset[c] = -mean[c] / std[c];
  }
  return { gain, offset };
}

function perChannel(values: number[] | undefined, channels: number, fallback: number, what: string): number[] {
  if (!values || values.length === 0) return new Array<number>(channels).fill(fallback);
  if (values.length === 1) return new Array<number>(channels).fill(values[0]);
  if (values.length !== channels) {
    throw invalidArgument(`preprocessing ${what} has ${values.length} values but the model has ${channels} input channels`);
  }
  return values;
}

/**
 * Weights of raw channels for each model channel: mix[oc][k] is the weight of raw channel k.
 * Raw data is RGB (or grey); 'bgr' models read channel 0 from blue.
 */
export function channelMix(rawChannels: number, modelChannels: number, order: PreprocessSpec['channelOrder']): number[][] {
  const mix: number[][] = [];
  for (let oc = 0; oc < modelChannels; oc++) {
    const w = new Array<number>(rawChannels).fill(0);
    if (rawChannels === modelChannels) {
      w[order === 'bgr' && modelChannels === 3 ? 2 - oc : oc] = 1;
    } else if (rawChannels === 1 && modelChannels === 3) {
      w[0] = 1;
    } else if (rawChannels === 3 && modelChannels === 1) {
      w[0] = LUMA_WEIGHTS[0];
      w[1] = LUMA_WEIGHTS[1];
      w[2] = LUMA_WEIGHTS[2];
    } else {
      throw invalidArgument(`cannot map images with ${rawChannels} channels to a model input with ${modelChannels} channels`);
    }
    mix.push(w);
  }
  return mix;
}

/**
 * Geometry of the fit: a shift (output (y, x) reads source (y + dy, x + dx), outside = padding),
 * which covers same-size, pad and crop, or bilinear taps.
 */
type Geometry = { kind: 'shift'; dy: number; dx: number } | { kind: 'bilinear'; ty: AxisTaps; tx: AxisTaps };

function geometry(h: number, w: number, outH: number, outW: number, fit: PreprocessSpec['fit']): Geometry {
  if (fit === 'resize' && (h !== outH || w !== outW)) {
    return { kind: 'bilinear', ty: axisTaps(h, outH), tx: axisTaps(w, outW) };
  }
  if (fit !== 'resize' && fit !== 'pad') throw invalidArgument(`unknown preprocessing fit '${String(fit)}'`);
  return { kind: 'shift', dy: Math.floor((h - outH) / 2), dx: Math.floor((w - outW) / 2) };
}

/** The raw batch in the model's input space: [n, C, H, W] float32. */
export function toInputSpace(batch: RawBatch, spec: PreprocessSpec, inputShape: Shape3): Float32Array {
  return pixelsToInputSpace(batch.pixels, batch.n, batch.height, batch.width, batch.channels, spec, inputShape);
}

/**
 * As `toInputSpace`, for any pixel array in raw units (uint8 images, or float means of them):
 * `pixels` is [n, h, w, c].
 */
export function pixelsToInputSpace(
  pixels: Uint8Array | Float32Array | Float64Array,
  n: number,
  h: number,
  w: number,
  c: number,
  spec: PreprocessSpec,
  inputShape: Shape3,
  out?: Float32Array,
): Float32Array {
  const [C, H, W] = inputShape;
  if (pixels.length < n * h * w * c) throw invalidArgument(`pixel buffer holds ${pixels.length} values, expected ${n * h * w * c}`);
  const { gain, offset } = affineMap(spec, C);
  const mix = channelMix(c, C, spec.channelOrder);
  const geo = geometry(h, w, H, W, spec.fit);
  const plane = H * W;
  const result = out ?? new Float32Array(n * C * plane);
  if (result.length < n * C * plane) throw invalidArgument(`output buffer too small: ${result.length} < ${n * C * plane}`);
  const imageSize = h * w * c;
  for (let oc = 0; oc < C; oc++) {
    const weights = mix[oc];
    const single = weights.filter((v) => v !== 0).length === 1 && weights.some((v) => v === 1);
    const source = weights.indexOf(1);
    const g = gain[oc];
    const b = offset[oc];
    for (let i = 0; i < n; i++) {
      const base = i * imageSize;
      const o = (i * C + oc) * plane;
      if (geo.kind === 'shift') {
        const { dy, dx } = geo;
        // Columns [xa, xb) of the output read the source; the rest is padding.
        const xa = Math.max(0, -dx);
        const xb = Math.max(xa, Math.min(W, w - dx));
        for (let y = 0; y < H; y++) {
          const row = o + y * W;
          const sy = y + dy;
          if (sy < 0 || sy >= h || xa >= xb) {
            result.fill(b, row, row + W);
            continue;
          }
          if (xa > 0) result.fill(b, row, row + xa);
          if (xb < W) result.fill(b, row + xb, row + W);
          let q = base + (sy * w + xa + dx) * c;
          if (single) {
            q += source;
            for (let x = xa; x < xb; x++, q += c) result[row + x] = pixels[q] * g + b;
          } else {
            for (let x = xa; x < xb; x++, q += c) result[row + x] = mixAt(pixels, q, weights) * g + b;
          }
        }
      } else {
        const { ty, tx } = geo;
        for (let y = 0; y < H; y++) {
          const r0 = base + ty.i0[y] * w * c;
          const r1 = base + ty.i1[y] * w * c;
          const fy = ty.f[y];
          for (let x = 0; x < W; x++) {
            const c0 = tx.i0[x] * c;
            const c1 = tx.i1[x] * c;
            const fx = tx.f[x];
            const p00 = mixAt(pixels, r0 + c0, weights);
            const p01 = mixAt(pixels, r0 + c1, weights);
            const p10 = mixAt(pixels, r1 + c0, weights);
            const p11 = mixAt(pixels, r1 + c1, weights);
            const top = p00 + (p01 - p00) * fx;
            const bottom = p10 + (p11 - p10) * fx;
            result[o + y * W + x] = (top + (bottom - top) * fy) * g + b;
          }
        }
      }
    }
  }
  return result;
}

function mixAt(pixels: ArrayLike<number>, at: number, weights: number[]): number {
  let v = 0;
  for (let k = 0; k < weights.length; k++) v += pixels[at + k] * weights[k];
  return v;
}

/**
 * An input-space image [C, H, W] back to displayable pixels, HWC uint8 (RGB order for 3 channels),
 * by the inverse of the affine map, rounded and clamped to 0..255.
 */
export function toDisplayPixels(image: Float32Array, shape: Shape3, spec: PreprocessSpec): Uint8Array {
  const [C, H, W] = shape;
  const plane = H * W;
  if (image.length !== C * plane) throw invalidArgument(`image holds ${image.length} values, expected ${C}×${H}×${W}`);
  const { gain, offset } = affineMap(spec, C);
  const out = new Uint8Array(plane * C);
  for (let oc = 0; oc < C; oc++) {
    // Display channel d shows model channel oc (BGR models: model channel 0 is blue → display 2).
    const d = spec.channelOrder === 'bgr' && C === 3 ? 2 - oc : oc;
    const g = gain[oc];
    const b = offset[oc];
    const o = oc * plane;
    for (let p = 0; p < plane; p++) {
      const v = (image[o + p] - b) / g;
      out[p * C + d] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

/**
 * The size (H, W) to ask a dataset to decode its images at, so that a batch's images share one size:
 * image folders are resized at decode time to the model's input when the fit is a resize, or when
 * their images vary in size; fixed-size formats keep their stored size (undefined).
 */
export function decodeSize(
  summary: { format: string; imageShape: [number, number, number] },
  spec: PreprocessSpec,
  inputShape: Shape3,
): [number, number] | undefined {
  if (summary.format !== 'image-folder') return undefined;
  if (spec.fit === 'resize' || summary.imageShape[0] === 0) return [inputShape[1], inputShape[2]];
  return undefined;
}

/**
 * When the fit only selects pixels (pad, crop, or no resize) and every model channel copies one raw
 * channel (same channels, BGR reorder, or grey → RGB), an input-space range follows from the raw
 * range of a window: rows [y0, y1) × cols [x0, x1) of the raw image, plus the padding value where
 * the fit pads. Undefined otherwise (resizing, or RGB → grey mixing).
 */
export interface SelectionFit {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
  padded: boolean;
  /** Raw channel read by each model channel. */
  source: number[];
}

export function selectionFit(h: number, w: number, c: number, spec: PreprocessSpec, inputShape: Shape3): SelectionFit | undefined {
  const [C, H, W] = inputShape;
  if (spec.fit === 'resize' && (h !== H || w !== W)) return undefined;
  const mix = channelMix(c, C, spec.channelOrder);
  const source: number[] = [];
  for (const weights of mix) {
    const nonZero = weights.filter((v) => v !== 0);
    if (nonZero.length !== 1 || nonZero[0] !== 1) return undefined;
    source.push(weights.indexOf(1));
  }
  const dy = Math.floor((h - H) / 2);
  const dx = Math.floor((w - W) / 2);
  const y0 = Math.max(0, dy);
  const x0 = Math.max(0, dx);
  const y1 = Math.min(h, dy + H);
  const x1 = Math.min(w, dx + W);
  return { y0, y1, x0, x1, padded: dy < 0 || dx < 0 || dy + H > h || dx + W > w, source };
}
