/** Messages between the image-decoding pool (decode-pool.ts) and its worker threads (decode-worker.ts). */
import type { ErrorKind } from '../errors';
import type { Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';

export interface DecodeJob {
  id: number;
  /** PNG or JPEG bytes (a copy, transferred). */
  bytes: Uint8Array;
  /** Names the image in errors, e.g. `encoded[2]`. */
  shown: string;
  /** Fit the decoded image into this model input space ([C, H, W]) with this preprocessing; absent: raw pixels. */
  target?: { spec: PreprocessSpec; inputShape: Shape3 };
}

export type DecodeResult =
  | { id: number; ok: true; /** [C, H, W] in the model's input space, or the raw pixels [H, W, C]. */ data: Float32Array | Uint8Array; height: number; width: number; channels: 1 | 3 }
  | { id: number; ok: false; kind: ErrorKind; message: string };
