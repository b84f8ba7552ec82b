/**
 * PNG and JPEG decoding (pngjs, jpeg-js) to HWC uint8 pixels, 1 channel for grey images and 3
 * otherwise (alpha dropped, CMYK converted by jpeg-js). `imageHeader` reads only the header.
 */
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { invalidArgument } from '../errors';
import type { RawBatch } from '../data/dataset';

export type ImageFormat = 'png' | 'jpeg';

export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  channels: 1 | 3;
}

export interface DecodedImage {
  height: number;
  width: number;
  channels: 1 | 3;
  /** [H, W, C] */
  pixels: Uint8Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Size and channel count from the header alone. `shown` names the source in errors. */
export function imageHeader(bytes: Uint8Array, shown = 'image'): ImageHeader {
  const format = sniffFormat(bytes);
  if (format === 'png') return pngHeader(bytes, shown);
  if (format === 'jpeg') return jpegHeader(bytes, shown);
  throw invalidArgument(`${shown}: not a PNG or JPEG image`);
}

function pngHeader(b: Uint8Array, shown: string): ImageHeader {
  if (b.length < 33 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') {
    throw invalidArgument(`${shown}: PNG without an IHDR header`);
  }
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const colorType = b[25];
  if (width === 0 || height === 0) throw invalidArgument(`${shown}: PNG of size ${width}×${height}`);
  return { format: 'png', width, height, channels: colorType === 0 || colorType === 4 ? 1 : 3 };
}

function jpegHeader(b: Uint8Array, shown: string): ImageHeader {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const length = (b[i + 2] << 8) | b[i + 3];
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (i + 10 > b.length) break;
      const height = (b[i + 5] << 8) | b[i + 6];
      const width = (b[i + 7] << 8) | b[i + 8];
      const components = b[i + 9];
      if (width === 0 || height === 0) throw invalidArgument(`${shown}: JPEG of size ${width}×${height}`);
      return { format: 'jpeg', width, height, channels: components === 1 ? 1 : 3 };
    }
    if (marker === 0xd9 || marker === 0xda) break;
    i += 2 + length;
  }
  throw invalidArgument(`${shown}: JPEG without a frame header (truncated or not a JPEG)`);
}

/** Largest image decoded (pixels): 64 megapixels, far above any CNN input. */
export const MAX_DECODED_PIXELS = 64 * 1024 * 1024;

/** Decodes a PNG or JPEG. */
export function decodePixels(bytes: Uint8Array, shown = 'image'): DecodedImage {
  const header = imageHeader(bytes, shown);
  const { width, height, channels } = header;
  // The header is read before any pixel: a few bytes must not make the decoder allocate gigabytes.
  if (width * height > MAX_DECODED_PIXELS) {
    throw invalidArgument(`${shown}: ${width}×${height} pixels is larger than the ${MAX_DECODED_PIXELS} pixels an image may have`);
  }
  let rgb: Uint8Array;
  let stride: number;
  try {
    if (header.format === 'png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      rgb = png.data;
      stride = 4;
    } else {
      const img = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: false });
      rgb = img.data;
      stride = 3;
    }
  } catch (e) {
    throw invalidArgument(`${shown}: cannot decode ${header.format.toUpperCase()}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const plane = width * height;
  if (rgb.length < plane * stride) throw invalidArgument(`${shown}: decoded ${rgb.length} bytes for a ${width}×${height} image`);
  const pixels = new Uint8Array(plane * channels);
  if (channels === 1) {
    for (let p = 0; p < plane; p++) pixels[p] = rgb[p * stride];
  } else if (stride === 3) {
    pixels.set(rgb.subarray(0, plane * 3));
  } else {
    for (let p = 0; p < plane; p++) {
      pixels[p * 3] = rgb[p * 4];
      pixels[p * 3 + 1] = rgb[p * 4 + 1];
      pixels[p * 3 + 2] = rgb[p * 4 + 2];
    }
  }
  return { height, width, channels, pixels };
}

/** One PNG or JPEG as a RawBatch of one image (label 0, index 0); anything else → invalid-argument. */
export function decodeImage(bytes: Uint8Array): RawBatch {
  const img = decodePixels(bytes);
  return {
    n: 1,
    height: img.height,
    width: img.width,
    channels: img.channels,
    pixels: img.pixels,
    labels: new Int32Array(1),
    indices: [0],
  };
}
