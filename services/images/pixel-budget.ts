/**
 * The pixel budget of one request's encoded images, checked from their headers before any pixel is
 * decoded: a few hundred bytes of PNG can declare 8192×8192 zeros. Over it → resource-exhausted naming
 * the limit, the image and its size.
 */
import { resourceExhausted } from '../errors';

export interface PixelBudget {
  /** Most pixels (width × height) one image may declare. */
  maxImagePixels: number;
  /** Most pixels all the images of one request may declare together. */
  maxRequestPixels: number;
}

export interface SizedImage {
  /** Names the image in errors, e.g. `encoded[2]`. */
  shown: string;
  width: number;
  height: number;
}

export function checkPixelBudget(images: readonly SizedImage[], budget: PixelBudget, field: string): void {
  let total = 0;
  for (const im of images) {
    const pixels = im.width * im.height;
    if (pixels > budget.maxImagePixels) {
      throw resourceExhausted(
        `${im.shown}: ${im.width}×${im.height} = ${pixels} pixels is over the server's limit of ${budget.maxImagePixels} pixels per image (--max-image-pixels); nothing was decoded`,
      );
    }
    total += pixels;
  }
  if (total > budget.maxRequestPixels) {
    throw resourceExhausted(
      `${field}: ${images.length} images of ${total} pixels in all is over the server's limit of ${budget.maxRequestPixels} pixels per request (--max-request-pixels); nothing was decoded`,
    );
  }
}
