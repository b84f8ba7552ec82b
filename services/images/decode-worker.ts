/**
 * One image-decoding worker thread: PNG/JPEG bytes → pixels → the model's input space, off the main
 * event loop. One job at a time; results come back as transferred buffers.
 */
import { parentPort } from 'node:worker_threads';
import { IntrospectError } from '../errors';
import { pixelsToInputSpace } from '../data/preprocess';
import { decodePixels } from './decode';
import type { DecodeJob, DecodeResult } from './decode-protocol';

const port = parentPort!;

port.on('message', (job: DecodeJob) => {
  let reply: DecodeResult;
  try {
    const img = decodePixels(job.bytes, job.shown);
    const data = job.target
      ? pixelsToInputSpace(img.pixels, 1, img.height, img.width, img.channels, job.target.spec, job.target.inputShape)
      : img.pixels;
    reply = { id: job.id, ok: true, data, height: img.height, width: img.width, channels: img.channels };
    port.postMessage(reply, [data.buffer as ArrayBuffer]);
  } catch (e) {
    reply = e instanceof IntrospectError
      ? { id: job.id, ok: false, kind: e.kind, message: e.message }
      : { id: job.id, ok: false, kind: 'internal', message: `${job.shown}: decoding failed: ${e instanceof Error ? e.message : String(e)}` };
    port.postMessage(reply);
  }
});
