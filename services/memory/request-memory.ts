/**
 * The memory one request may use, and what a request of a model is estimated to need: for every image,
 * every value of the graph (the engines' own per-row bound, `forwardRowBytes`, an upper bound since
 * engines free values early) and the copy of its input sent to an engine worker. Streamed batches are
 * pipelined (one in the engine while the next is read and preprocessed), so a batch gets half the
 * budget. Batch sizes are capped to fit; a request that cannot fit is refused before anything is
 * allocated.
 *
 *   const memory = new RequestMemory(1 << 30);
 *   memory.checkImages(model, 8, 'Predict');          // resource-exhausted when 8 images do not fit
 *   const batch = memory.batchSize(model, 8192, 256); // ≤ what fits, at least 1
 */
import { forwardRowBytes } from '../engines/chunks';
import { resourceExhausted } from '../errors';
import type { LoadedModel } from '../models/model';

/** Batches alive at once in a pipelined stream (Evaluate): the one in the engine and the next one. */
export const PIPELINE_DEPTH = 2;

export class RequestMemory {
  constructor(
    /** Bytes one request may use. */
    readonly budgetBytes: number,
    /** How the budget is named in errors (the flag or where it came from). */
    readonly source = '--memory-budget',
  ) {
    if (!(budgetBytes > 0)) throw new RangeError(`memory budget must be positive, got ${budgetBytes}`);
  }

  /** Estimated bytes of one image of this model in a forward pass. */
  imageBytes(model: LoadedModel): number {
    const [c, h, w] = model.inputShape;
    return forwardRowBytes(model.engineModel.graph) + c * h * w * 4;
  }

  /** Most images of this model one request may hold (0 when not even one fits). */
  maxImages(model: LoadedModel): number {
    return Math.floor(this.budgetBytes / this.imageBytes(model));
  }

  /** Refuses `n` images of `model` in one request when they do not fit the budget. */
  checkImages(model: LoadedModel, n: number, what: string): void {
    const per = this.imageBytes(model);
    const need = n * per;
    if (need <= this.budgetBytes) return;
    const fits = this.maxImages(model);
    throw resourceExhausted(
      `${what}: ${n} image${n === 1 ? '' : 's'} of model '${model.name}' (input [${model.inputShape.join(', ')}]) need an estimated ${mib(need)} ` +
        `(${mib(per)} per image with its activations), over the server's memory budget of ${mib(this.budgetBytes)} per request (${this.source}); ` +
        (fits > 0 ? `send at most ${fits} image${fits === 1 ? '' : 's'} per call` : 'this model does not fit even one image'),
    );
  }

  /**
   * The batch size of a pipelined stream: the requested one (0 or absent = `defaultBatch`), capped so
   * that PIPELINE_DEPTH batches fit the budget. Refuses when not even one image fits.
   */
  batchSize(model: LoadedModel, requested: number | undefined, defaultBatch: number, what: string): number {
    const wanted = requested && requested > 0 ? requested : defaultBatch;
    const fits = this.maxImages(model);
    if (fits < 1) this.checkImages(model, 1, what);
    return Math.max(1, Math.min(wanted, Math.floor(fits / PIPELINE_DEPTH)));
  }
}

function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
