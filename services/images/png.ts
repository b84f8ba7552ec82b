/**
 * PNG output: raw pixels, attribution images (signed, symmetric around 0), and gallery grids.
 * Decoding lives in decode.ts and is re-exported here.
 */
import { PNG } from 'pngjs';
import { invalidArgument } from '../errors';
import type { Shape3 } from '../data/preprocess';

export { decodeImage, decodePixels, imageHeader } from './decode';

const GREY = 0;
const RGB = 2;

/** HWC uint8 pixels (1 or 3 channels) → PNG bytes. */
export function encodePng(pixels: Uint8Array, h: number, w: number, c: number): Buffer {
  if (c !== 1 && c !== 3) throw invalidArgument(`PNG output needs 1 or 3 channels, got ${c}`);
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw invalidArgument(`bad PNG size ${h}×${w}`);
  if (pixels.length !== h * w * c) throw invalidArgument(`PNG pixels hold ${pixels.length} bytes, expected ${h}×${w}×${c}`);
  const colorType = c === 1 ? GREY : RGB;
  return PNG.sync.write(
    { width: w, height: h, data: Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength) } as PNG,
    { colorType, inputColorType: colorType, inputHasAlpha: false, deflateLevel: 6 },
  );
}

/**
 * An attribution image [C, H, W] (C = 1 or 3, channel 0 = red) → PNG, normalised symmetrically:
 * 0 → mid grey (128), ±max|x| over all channels → 255 / 0. An all-zero image is flat grey.
 */
export function attributionToPng(image: Float32Array, shape: Shape3): Buffer {
  return encodePng(attributionPixels(image, shape), shape[1], shape[2], shape[0]);
}

/** The pixels of `attributionToPng`, HWC uint8. */
export function attributionPixels(image: Float32Array, shape: Shape3): Uint8Array {
  const [C, H, W] = shape;
  const plane = H * W;
  if (image.length !== C * plane) throw invalidArgument(`attribution holds ${image.length} values, expected ${C}×${H}×${W}`);
  let peak = 0;
  for (let i = 0; i < image.length; i++) {
    const a = Math.abs(image[i]);
    if (a > peak) peak = a;
  }
  const out = new Uint8Array(C * plane);
  const k = peak > 0 && Number.isFinite(peak) ? 127.5 / peak : 0;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < plane; p++) {
      const v = 127.5 + image[c * plane + p] * k;
      out[p * C + c] = v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
    }
  }
  return out;
}

export interface GridImage {
  pixels: Uint8Array; // [H, W, C]
  height: number;
  width: number;
  channels: number;
}

/**
 * Tiles images (row-major, `cols` per row, `gap` pixels of white between them) into one PNG. Cells
 * take the largest image size; smaller images sit at their cell's top-left. Grey images are shown as
 * grey in an RGB grid when any image is RGB.
 */
export function gridPng(images: GridImage[], cols: number, gap = 2): Buffer {
  if (images.length === 0) throw invalidArgument('grid needs at least one image');
  if (!Number.isInteger(cols) || cols < 1) throw invalidArgument(`grid columns must be a positive integer, got ${cols}`);
  const c = images.some((im) => im.channels === 3) ? 3 : 1;
  const cellH = Math.max(...images.map((im) => im.height));
  const cellW = Math.max(...images.map((im) => im.width));
  const columns = Math.min(cols, images.length);
  const rows = Math.ceil(images.length / columns);
  const H = rows * cellH + (rows - 1) * gap;
  const W = columns * cellW + (columns - 1) * gap;
  const out = new Uint8Array(H * W * c).fill(255);
  images.forEach((im, i) => {
    if (im.channels !== 1 && im.channels !== 3) throw invalidArgument(`grid image ${i} has ${im.channels} channels`);
    if (im.pixels.length !== im.height * im.width * im.channels) throw invalidArgument(`grid image ${i} has the wrong number of pixels`);
    const y0 = Math.floor(i / columns) * (cellH + gap);
    const x0 = (i % columns) * (cellW + gap);
    for (let y = 0; y < im.height; y++) {
      for (let x = 0; x < im.width; x++) {
        const o = ((y0 + y) * W + x0 + x) * c;
        const s = (y * im.width + x) * im.channels;
        for (let k = 0; k < c; k++) out[o + k] = im.pixels[s + (im.channels === 1 ? 0 : k)];
      }
    }
  });
  return encodePng(out, H, W, c);
}
