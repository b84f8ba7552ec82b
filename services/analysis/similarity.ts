/**
 * Similarity values (SPEC §3). For class i, conv layer j, neuron k, with ω_ijk the neuron's attribution
 * image at the class-average image I_i:
 *   method 1: s_ijk = metric(I_i, ω_ijk)        method 2: s_ijk = metric(φ_i, ω_ijk)
 * where φ_i is the attribution image of class i's logit at I_i. A neuron whose image is all zeros is
 * dead for that class: value 0, listed, and counted as 0 in the statistics.
 *
 * Work goes class by class (one forward per average), layer by layer, chunk by chunk; each chunk's
 * values are computed as it arrives and its images dropped, except the few kept for the rankings.
 */
import type { Engine, EngineModel } from '../engines/engine';
import { IntrospectError, invalidArgument, throwIfAborted } from '../errors';
import { buildCurves, meanStd, type LayerStats, type SimilarityCurves } from '../../api/curves';
import { comparator, type ImageShape, type MetricName } from './metrics';
import { attributeWith, neuronImageChunks, type AttributionSettings, type ChunkingOptions } from './neuron-images';

export type { LayerStats, SimilarityCurves };

export type SimilarityMethodNumber = 1 | 2;

export interface ClassImage {
  classIndex: number;
  /** [C, H, W] in input space. */
  image: Float32Array;
}

export interface SimilarityOptions extends ChunkingOptions {
  engine: Engine;
  model: EngineModel;
  /** The class-average image of each class analysed. */
  averages: ClassImage[];
  method: SimilarityMethodNumber;
  metric?: MetricName;
  /** Conv layers; default all. */
  layers?: number[];
  /** Classes, a subset of those in `averages`; default all of `averages`, in their order. */
  classes?: number[];
  /** Default guided backprop, objective sum(|z|). */
  attribution?: AttributionSettings;
  /** Lowest and highest N neurons kept with their images per (class, layer); default 0. */
  rankImages?: number;
  signal?: AbortSignal;
}

export interface RankedNeuron {
  neuron: number;
  value: number;
  image: Float32Array;
}

export interface LayerSimilarity {
  classIndex: number;
  layer: number;
  /** One per channel of the layer. */
  values: Float32Array;
  /** Channels whose image is all zeros. */
  dead: number[];
  /** Over all channels, dead counting as 0. Population standard deviation. */
  mean: number;
  std: number;
  /** The N live neurons of lowest value, lowest first. Dead neurons are listed in `dead`, not here. */
  lowest: RankedNeuron[];
  /** The N live neurons of highest value, highest first. */
  highest: RankedNeuron[];
}

export type SimilarityEvent =
  | { kind: 'progress'; done: number; total: number }
  | { kind: 'layer'; layer: LayerSimilarity; done: number; total: number }
  | { kind: 'summary'; curves: SimilarityCurves; done: number; total: number };

const DEFAULT_ATTRIBUTION: AttributionSettings = { method: 'guided', objective: 'abs_sum' };

/** The value of every neuron of one (class, layer), folded in chunk by chunk. */
export class LayerAccumulator {
  readonly values: Float32Array;
  readonly dead: number[] = [];
  /** Neurons added so far. */
  count = 0;
  private readonly lowest: RankedNeuron[] = [];
  private readonly highest: RankedNeuron[] = [];

  constructor(
    readonly classIndex: number,
    readonly layer: number,
    channels: number,
    private readonly keep: number,
  ) {
    this.values = new Float32Array(channels);
  }

  add(neuron: number, value: number, dead: boolean, image: Float32Array): void {
    this.values[neuron] = dead ? 0 : value;
    this.count++;
    if (dead) {
      this.dead.push(neuron);
      return;
    }
    if (this.keep <= 0) return;
    keepBest(this.highest, this.keep, { neuron, value, image }, (a, b) => b.value - a.value || a.neuron - b.neuron);
    keepBest(this.lowest, this.keep, { neuron, value, image }, (a, b) => a.value - b.value || a.neuron - b.neuron);
  }

  result(): LayerSimilarity {
    const { mean, std } = meanStd(this.values);
    return {
      classIndex: this.classIndex,
      layer: this.layer,
      values: this.values,
      dead: [...this.dead].sort((a, b) => a - b),
      mean,
      std,
      lowest: this.lowest,
      highest: this.highest,
    };
  }
}

/** Inserts into a list kept sorted by `order` and at most `n` long; the image is copied only if kept. */
function keepBest(list: RankedNeuron[], n: number, item: RankedNeuron, order: (a: RankedNeuron, b: RankedNeuron) => number): void {
  if (list.length >= n && order(item, list[list.length - 1]) >= 0) return;
  let i = list.length;
  while (i > 0 && order(item, list[i - 1]) < 0) i--;
  list.splice(i, 0, { ...item, image: item.image.slice() });
  if (list.length > n) list.pop();
}

export function imageShape(model: EngineModel): ImageShape {
  const s = model.graph.input.shape;
  if (s.length !== 3) throw invalidArgument(`the model's input is ${s.join('×')}; similarity needs an image input [C, H, W]`);
  return [s[0], s[1], s[2]];
}

interface Resolved {
  classes: number[];
  layers: number[];
  images: Map<number, Float32Array>;
  metric: MetricName;
  attribution: AttributionSettings;
  rankImages: number;
}

function resolve(opts: SimilarityOptions): Resolved {
  const { model } = opts;
  if (opts.method !== 1 && opts.method !== 2) throw invalidArgument(`similarity method must be 1 or 2, got ${String(opts.method)}`);
  const images = new Map<number, Float32Array>();
  for (const a of opts.averages) images.set(a.classIndex, a.image);
  const classes = opts.classes && opts.classes.length > 0 ? [...opts.classes] : opts.averages.map((a) => a.classIndex);
  if (classes.length === 0) throw invalidArgument('similarity needs at least one class average');
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= model.classes) throw invalidArgument(`class ${c} does not exist (the model has ${model.classes} classes)`);
    if (!images.has(c)) throw invalidArgument(`no class-average image was given for class ${c}`);
  }
  const layers = opts.layers && opts.layers.length > 0 ? [...opts.layers] : model.convLayers.map((l) => l.index);
  for (const l of layers) {
    if (!Number.isInteger(l) || model.convLayers[l] === undefined) {
      throw invalidArgument(`conv layer ${l} does not exist (the model has ${model.convLayers.length} conv layers)`);
    }
  }
  if (new Set(classes).size !== classes.length) throw invalidArgument(`classes are repeated: ${classes.join(', ')}`);
  if (new Set(layers).size !== layers.length) throw invalidArgument(`layers are repeated: ${layers.join(', ')}`);
  const rankImages = opts.rankImages ?? 0;
  if (!Number.isInteger(rankImages) || rankImages < 0) throw invalidArgument(`rank images must be a non-negative integer, got ${rankImages}`);
  return { classes, layers, images, metric: opts.metric ?? 'cosine', attribution: opts.attribution ?? DEFAULT_ATTRIBUTION, rankImages };
}

/**
 * Streams one `layer` event per (class, layer), `progress` events between chunks, and a final
 * `summary` with the curves. `done`/`total` count neuron images.
 */
export async function* similarity(opts: SimilarityOptions): AsyncGenerator<SimilarityEvent> {
  const { engine, model, signal } = opts;
  const r = resolve(opts);
  const shape = imageShape(model);
  const size = shape[0] * shape[1] * shape[2];
  const channelsPerClass = r.layers.reduce((n, l) => n + model.convLayers[l].channels, 0);
  const total = r.classes.length * channelsPerClass;
  const stats: LayerStats[][] = [];
  let done = 0;
  for (const classIndex of r.classes) {
    throwIfAborted(signal);
    const average = r.images.get(classIndex)!;
    // Method 2 compares with φ_i, the guided-backprop image of class i's logit at I_i (SPEC §3),
    // whatever method draws the neurons.
    const reference =
      opts.method === 1
        ? average
        : await attributeWith(engine, model, average, { kind: 'logit', classes: [classIndex] }, { method: 'guided' }, signal);
    const compare = comparator(r.metric, reference, shape);
    const row: LayerStats[] = [];
    let acc: LayerAccumulator | undefined;
    const chunks = neuronImageChunks({
      ...r.attribution,
      engine,
      model,
      input: average,
      layers: r.layers.map((layer) => ({ layer })),
      signal,
      chunk: opts.chunk,
      memoryBudgetBytes: opts.memoryBudgetBytes,
      concurrency: opts.concurrency,
    });
    for await (const chunk of chunks) {
      acc ??= new LayerAccumulator(classIndex, chunk.layer, model.convLayers[chunk.layer].channels, r.rankImages);
      for (let b = 0; b < chunk.neurons.length; b++) {
        const image = chunk.images.subarray(b * size, (b + 1) * size);
        const { value, dead } = compare(image);
        acc.add(chunk.neurons[b], value, dead, image);
      }
      done += chunk.neurons.length;
      if (acc.count < acc.values.length) {
        yield { kind: 'progress', done, total };
        continue;
      }
      const layer = acc.result();
      row.push({ mean: layer.mean, std: layer.std, dead: layer.dead.length });
      acc = undefined;
      yield { kind: 'layer', layer, done, total };
    }
    stats.push(row);
  }
  yield { kind: 'summary', curves: buildCurves(r.classes, r.layers, stats), done, total };
}

/** Runs `similarity` to the end and returns its layers and curves (for callers that need them all). */
export async function collectSimilarity(opts: SimilarityOptions): Promise<{ layers: LayerSimilarity[]; curves: SimilarityCurves }> {
  const layers: LayerSimilarity[] = [];
  for await (const event of similarity(opts)) {
    if (event.kind === 'layer') layers.push(event.layer);
    else if (event.kind === 'summary') return { layers, curves: event.curves };
  }
  throw new IntrospectError('internal', 'similarity ended without a summary');
}
