/**
 * Dataset examples (SPEC §2; data-driven activation maximisation of one neuron): the K images of a
 * data set with the highest mean activation of a conv channel (after its activation), found by
 * streaming the data set once through the engine with a bounded min-heap per channel, then reading
 * only the winning images a second time for display.
 */
import type { Engine, EngineModel } from '../engines/engine';
import { IntrospectError, invalidArgument, throwIfAborted } from '../errors';
import type { Dataset, RawBatch, SplitName } from '../data/dataset';
import type { PreprocessSpec } from '../data/preprocessing';
import { decodeSize, toInputSpace, type Shape3 } from '../data/preprocess';

/** Examples per channel when a request names no K. */
export const DEFAULT_EXAMPLES = 9;

export interface DatasetExamplesOptions {
  engine: Engine;
  model: EngineModel;
  /** How raw pixels become the model's input. */
  preprocessing: PreprocessSpec;
  dataset: Dataset;
  split: SplitName;
  layer: number;
  /** Channels of the layer; omitted or empty = all. */
  channels?: number[];
  /** Examples per channel; default 9. */
  k?: number;
  /** Scan at most this many images (0 or absent = all). */
  limit?: number;
  /** Images per engine call; default 64. */
  batchSize?: number;
  signal?: AbortSignal;
}

export interface ExampleEntry {
  activation: number;
  index: number;
  label: number;
}

export type DatasetExamplesEvent =
  | { kind: 'progress'; scanned: number; toScan: number }
  | {
      kind: 'example';
      layer: number;
      neuron: number;
      /** 0 = highest activation. */
      rank: number;
      index: number;
      label: number;
      activation: number;
      /** The image as read for the model (HWC uint8, one image; image folders decoded as `decodeSize` says). */
      image: RawBatch;
      done: number;
      total: number;
    };

/** Keeps the K entries of highest activation (ties: the lower index wins) in a min-heap. */
export class TopK {
  private readonly heap: ExampleEntry[] = [];

  constructor(private readonly k: number) {}

  /** a ranks below b (is the heap's root before b). */
  private static below(a: ExampleEntry, b: ExampleEntry): boolean {
    return a.activation < b.activation || (a.activation === b.activation && a.index > b.index);
  }

  push(e: ExampleEntry): void {
    const h = this.heap;
    if (h.length < this.k) {
      h.push(e);
      let i = h.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!TopK.below(h[i], h[p])) break;
        [h[i], h[p]] = [h[p], h[i]];
        i = p;
      }
      return;
    }
    if (this.k === 0 || !TopK.below(h[0], e)) return;
    h[0] = e;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && TopK.below(h[l], h[m])) m = l;
      if (r < h.length && TopK.below(h[r], h[m])) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }

  /** Highest first. */
  sorted(): ExampleEntry[] {
    return [...this.heap].sort((a, b) => (TopK.below(a, b) ? 1 : TopK.below(b, a) ? -1 : 0));
  }
}

function splitCount(dataset: Dataset, split: SplitName): number {
  const s = dataset.summary.splits.find((x) => x.split === split);
  if (!s) throw invalidArgument(`data set '${dataset.summary.name}' has no ${split} split`);
  return s.count;
}

export async function* datasetExamples(opts: DatasetExamplesOptions): AsyncGenerator<DatasetExamplesEvent> {
  const { engine, model, dataset, split, layer, signal } = opts;
  const conv = model.convLayers[layer];
  if (!Number.isInteger(layer) || conv === undefined) {
    throw invalidArgument(`conv layer ${layer} does not exist (the model has ${model.convLayers.length} conv layers)`);
  }
  const channels = opts.channels && opts.channels.length > 0 ? opts.channels : Array.from({ length: conv.channels }, (_, c) => c);
  for (const c of channels) {
    if (!Number.isInteger(c) || c < 0 || c >= conv.channels) throw invalidArgument(`channel ${c} does not exist in conv layer ${layer} (${conv.channels} channels)`);
  }
  const k = opts.k ?? DEFAULT_EXAMPLES;
  if (!Number.isInteger(k) || k < 1 || k > 1000) throw invalidArgument(`k must be 1..1000, got ${k}`);
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw invalidArgument(`batch size must be a positive integer, got ${batchSize}`);
  const s = model.graph.input.shape;
  if (s.length !== 3) throw invalidArgument(`the model's input is ${s.join('×')}; examples need an image input [C, H, W]`);
  const inputShape: Shape3 = [s[0], s[1], s[2]];
  const count = splitCount(dataset, split);
  const toScan = opts.limit && opts.limit > 0 ? Math.min(opts.limit, count) : count;
  const size = decodeSize(dataset.summary, opts.preprocessing, inputShape);

  const heaps = channels.map(() => new TopK(k));
  let scanned = 0;
  for await (const batch of dataset.batches(split, { batchSize, limit: toScan, size, signal })) {
    throwIfAborted(signal);
    const input = toInputSpace(batch, opts.preprocessing, inputShape);
    const [acts] = await engine.activations(model, input, batch.n, [layer], { signal });
    for (let i = 0; i < batch.n; i++) {
      for (let j = 0; j < channels.length; j++) {
        heaps[j].push({ activation: acts.mean[i * acts.channels + channels[j]], index: batch.indices[i], label: batch.labels[i] });
      }
    }
    scanned += batch.n;
    yield { kind: 'progress', scanned, toScan };
  }

  const winners = heaps.map((h) => h.sorted());
  const wanted = [...new Set(winners.flat().map((e) => e.index))].sort((a, b) => a - b);
  const images = new Map<number, RawBatch>();
  for await (const batch of dataset.batches(split, { batchSize, indices: wanted, size, signal })) {
    const per = batch.height * batch.width * batch.channels;
    for (let i = 0; i < batch.n; i++) {
      images.set(batch.indices[i], {
        n: 1,
        height: batch.height,
        width: batch.width,
        channels: batch.channels,
        pixels: batch.pixels.slice(i * per, (i + 1) * per),
        labels: Int32Array.of(batch.labels[i]),
        indices: [batch.indices[i]],
      });
    }
  }
  const total = winners.reduce((n, w) => n + w.length, 0);
  let done = 0;
  for (let j = 0; j < channels.length; j++) {
    for (let rank = 0; rank < winners[j].length; rank++) {
      const e = winners[j][rank];
      const image = images.get(e.index);
      if (!image) throw new IntrospectError('internal', `data set '${dataset.summary.name}' did not return sample ${e.index} of its ${split} split`);
      done++;
      yield { kind: 'example', layer, neuron: channels[j], rank, index: e.index, label: e.label, activation: e.activation, image, done, total };
    }
  }
}
