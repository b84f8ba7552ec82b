/**
 * Predict's images → the model's input space [N, C, H, W]. Images come as a tensor of raw pixels
 * ([N, H, W, C] or [H, W, C], uint8 or float32 in 0..255) or as PNG/JPEG bytes; each is fitted to
 * the model's input size and channels by the model's preprocessing.
 */
import type { PredictRequest } from '../api/generated/introspect/v1/models';
import { pixelsToInputSpace } from '../services/data/preprocess';
import { invalidArgument } from '../services/errors';
import { decodePixels } from '../services/images/decode';
import type { LoadedModel } from '../services/models/model';
import { decodeTensor } from './tensors';

/** Most images one Predict call takes (larger jobs belong in Evaluate or several calls). */
export const MAX_PREDICT_IMAGES = 1024;

function checkChannels(c: number, model: LoadedModel, field: string): void {
  const C = model.inputShape[0];
  const ok = c === C || (c === 1 && C === 3) || (c === 3 && C === 1);
  if (!ok) {
    throw invalidArgument(
      `${field}: images with ${c} channels cannot feed model '${model.name}', which takes ${C} channel${C === 1 ? '' : 's'} (give 1 or 3)`,
    );
  }
}

export function predictInput(req: PredictRequest, model: LoadedModel): { input: Float32Array; n: number } {
  const [C, H, W] = model.inputShape;
  const hasTensor = req.images !== undefined;
  const hasEncoded = req.encoded.length > 0;
  if (hasTensor && hasEncoded) throw invalidArgument('give images either as a tensor (images) or encoded (encoded), not both');
  if (!hasTensor && !hasEncoded) throw invalidArgument('no images: set images (a tensor) or encoded (PNG/JPEG bytes)');
  if (hasTensor) {
    const t = decodeTensor(req.images, 'images');
    if (t.shape.length !== 3 && t.shape.length !== 4) {
      throw invalidArgument(`images.shape [${t.shape.join(', ')}] must be [N, H, W, C] or [H, W, C]`);
    }
    const [n, h, w, c] = t.shape.length === 4 ? (t.shape as [number, number, number, number]) : [1, ...(t.shape as [number, number, number])];
    if (n > MAX_PREDICT_IMAGES) throw invalidArgument(`images: ${n} images in one call; at most ${MAX_PREDICT_IMAGES}`);
    checkChannels(c, model, 'images.shape');
    if (t.dtype === 'int32') throw invalidArgument('images.dtype must be UINT8 or FLOAT32 (raw pixels 0..255)');
    if (t.dtype === 'float32' && !t.data.every((v) => Number.isFinite(v))) {
      throw invalidArgument('images: float32 pixels must be finite (0..255)');
    }
    return { input: pixelsToInputSpace(t.data, n, h, w, c, model.preprocessing, [C, H, W]), n };
  }
  const n = req.encoded.length;
  if (n > MAX_PREDICT_IMAGES) throw invalidArgument(`encoded: ${n} images in one call; at most ${MAX_PREDICT_IMAGES}`);
  const plane = C * H * W;
  const input = new Float32Array(n * plane);
  req.encoded.forEach((bytes, i) => {
    const img = decodePixels(bytes, `encoded[${i}]`);
    checkChannels(img.channels, model, `encoded[${i}]`);
    pixelsToInputSpace(img.pixels, 1, img.height, img.width, img.channels, model.preprocessing, [C, H, W], input.subarray(i * plane));
  });
  return { input, n };
}
