/**
 * Image decoding off the main event loop: a small pool of worker threads that turn PNG/JPEG bytes into
 * the model's input space. Headers are read here first (a few bytes each) and checked against the pixel
 * budget, so an image bomb is refused before any worker allocates for it; health checks and metrics
 * keep answering while large images decode.
 *
 *   const decoder = new ImageDecodePool({ threads: 2, budget: { maxImagePixels: 16 << 20, maxRequestPixels: 64 << 20 } });
 *   const input = await decoder.toInputSpace([{ bytes, shown: 'encoded[0]' }], model, { field: 'encoded', signal });
 *   await decoder.close();
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { IntrospectError, throwIfAborted } from '../errors';
import type { Shape3 } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { imageHeader, type DecodedImage, type ImageHeader } from './decode';
import type { DecodeJob, DecodeResult } from './decode-protocol';
import { checkPixelBudget, type PixelBudget } from './pixel-budget';

export interface EncodedImage {
  bytes: Uint8Array;
  /** Names the image in errors, e.g. `encoded[2]`. */
  shown: string;
}

export interface InputSpaceTarget {
  preprocessing: PreprocessSpec;
  inputShape: Shape3;
}

interface Pending {
  job: DecodeJob;
  resolve(result: Extract<DecodeResult, { ok: true }>): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  busy: Pending | null;
}

export class ImageDecodePool {
  readonly threads: number;
  readonly budget: PixelBudget;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(opts: { threads: number; budget: PixelBudget }) {
    if (!Number.isSafeInteger(opts.threads) || opts.threads < 1) throw new RangeError(`decode threads must be a positive integer, got ${opts.threads}`);
    this.threads = opts.threads;
    this.budget = opts.budget;
  }

  /** Worker threads started (they start on first use). */
  get workers(): number {
    return this.slots.length;
  }

  /** Jobs waiting for a worker now. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Every image's header, checked against the pixel budget and `checkHeader` (e.g. channels), then all
   * decoded in the workers into one [N, C, H, W] buffer. Nothing is decoded when any check fails.
   */
  async toInputSpace(
    images: readonly EncodedImage[],
    target: InputSpaceTarget,
    opts: { field: string; signal?: AbortSignal; checkHeader?: (header: ImageHeader, shown: string) => void },
  ): Promise<Float32Array> {
    const headers = images.map((im) => imageHeader(im.bytes, im.shown));
    checkPixelBudget(headers.map((h, i) => ({ shown: images[i]!.shown, width: h.width, height: h.height })), this.budget, opts.field);
    if (opts.checkHeader) headers.forEach((h, i) => opts.checkHeader!(h, images[i]!.shown));
    const [C, H, W] = target.inputShape;
    const plane = C * H * W;
    const out = new Float32Array(images.length * plane);
    await Promise.all(
      images.map(async (im, i) => {
        const r = await this.decode(im, { spec: target.preprocessing, inputShape: target.inputShape }, opts.signal);
        out.set(r.data, i * plane);
      }),
    );
    throwIfAborted(opts.signal);
    return out;
  }

  /**
   * Raw pixels of stored images (a data set's files, vetted when it was registered; no request budget),
   * decoded in the workers.
   */
  async pixels(images: readonly EncodedImage[], signal?: AbortSignal): Promise<DecodedImage[]> {
    const out = await Promise.all(images.map((im) => this.decode(im, undefined, signal)));
    throwIfAborted(signal);
    return out.map((r) => ({ height: r.height, width: r.width, channels: r.channels, pixels: r.data as Uint8Array }));
  }

  /** Finishes nothing more: queued and running jobs fail, workers end. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new IntrospectError('cancelled', 'the image decoder is closing');
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const s of this.slots) s.busy?.reject(err);
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }

  private decode(im: EncodedImage, target: DecodeJob['target'], signal: AbortSignal | undefined): Promise<Extract<DecodeResult, { ok: true }>> {
    if (this.closed) return Promise.reject(new IntrospectError('cancelled', 'the image decoder is closed'));
    throwIfAborted(signal);
    // A copy: the request's buffer is shared with the rest of the message, and the copy is transferred.
    const bytes = new Uint8Array(im.bytes);
    const job: DecodeJob = { id: this.nextId++, bytes, shown: im.shown, target };
    return new Promise<Extract<DecodeResult, { ok: true }>>((resolve, reject) => {
      const pending: Pending = { job, resolve, reject };
      const onAbort = (): void => {
        const at = this.queue.indexOf(pending);
        if (at >= 0) this.queue.splice(at, 1);
        try {
          throwIfAborted(signal);
        } catch (e) {
          reject(e as Error);
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = <T>(f: (v: T) => void) => (v: T): void => {
        signal?.removeEventListener('abort', onAbort);
        f(v);
      };
      pending.resolve = done(resolve);
      pending.reject = done(reject);
      this.queue.push(pending);
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot && this.slots.length < this.threads) slot = this.spawn();
      if (!slot) return;
      const next = this.queue.shift()!;
      slot.busy = next;
      slot.worker.postMessage(next.job, [next.job.bytes.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(path.join(__dirname, 'decode-worker.js'));
    const slot: Slot = { worker, busy: null };
    this.slots.push(slot);
    worker.unref();
    worker.on('message', (msg: DecodeResult) => {
      const p = slot.busy;
      slot.busy = null;
      if (p && p.job.id === msg.id) {
        if (msg.ok) p.resolve(msg);
        else p.reject(new IntrospectError(msg.kind, msg.message));
      }
      this.pump();
    });
    const died = (why: string): void => {
      const at = this.slots.indexOf(slot);
      if (at >= 0) this.slots.splice(at, 1);
      slot.busy?.reject(new IntrospectError('internal', `${slot.busy.job.shown}: the image decoder stopped (${why})`));
      slot.busy = null;
      if (!this.closed) this.pump();
    };
    worker.on('error', (e) => died(e.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    return slot;
  }
}
