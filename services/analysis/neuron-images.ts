/**
 * Neuron images (SPEC §2): attribution images of conv channels and class logits for one input image.
 *
 * The engine does one forward pass per input and a batched backward with one seed per batch row (and
 * spreads a call over its workers). Here the channels of a layer go to the engine in chunks whose
 * images fit a memory budget; optionally several chunks are kept in flight so that what the caller
 * does with one chunk overlaps the engine's work on the next. Results come out in order.
 *
 * The method (a base rule plus wrappers such as integrated gradients and SmoothGrad) comes from the
 * method registry (services/methods/registry.ts); each of its base-rule evaluations is one engine call
 * for the whole chunk.
 */
import type { AttributionTarget, Engine, EngineModel } from '../engines/engine';
import { invalidArgument, throwIfAborted } from '../errors';
import { methodAttributor, methodRowBytes, resolveMethod, type AttributionSettings, type ResolvedMethod } from '../methods/registry';
import { isAllZero } from './metrics';

export { ATTRIBUTION_METHODS, type AttributionMethodName, type AttributionSettings } from '../methods/registry';
export { DEFAULT_IG_STEPS } from '../methods/integrated-gradients';

export interface LayerChannels {
  layer: number;
  /** Channels of the layer; omitted or empty = all. */
  channels?: number[];
}

export interface ChunkingOptions {
  /** Rows per engine call; default from `memoryBudgetBytes`. */
  chunk?: number;
  /** Bytes the images of the chunks in flight may take. Default 64 MiB. */
  memoryBudgetBytes?: number;
  /**
   * Engine calls kept in flight (default 1: an engine already spreads one call over its workers; more
   * overlaps this side's work on one chunk with the engine's on the next, at the cost of memory).
   */
  concurrency?: number;
}

export interface NeuronImagesOptions extends AttributionSettings, ChunkingOptions {
  engine: Engine;
  model: EngineModel;
  /** [C, H, W] in input space. */
  input: Float32Array;
  layers: LayerChannels[];
  /** Class logits whose images are wanted too (they come first, with layer −1). */
  classes?: number[];
  signal?: AbortSignal;
}

export interface NeuronImage {
  /** Conv layer index; −1 for a class logit. */
  layer: number;
  /** Channel, or class index for a logit. */
  neuron: number;
  /** [C, H, W] in input space; a view into the chunk's buffer (copy it to keep it beyond the chunk). */
  image: Float32Array;
  allZero: boolean;
  done: number;
  total: number;
}

export interface NeuronImageChunk {
  layer: number;
  neurons: number[];
  /** [neurons.length, C, H, W] */
  images: Float32Array;
  /** Neurons finished including this chunk, out of `total`. */
  done: number;
  total: number;
}

export const DEFAULT_MEMORY_BUDGET = 64 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 1;

interface ChunkTask {
  layer: number;
  neurons: number[];
  target: AttributionTarget;
}

export function inputSize(model: EngineModel): number {
  return model.graph.input.shape.reduce((a, b) => a * b, 1);
}

/** Resolves a selection to explicit channel lists, checking indices against the model. */
export function resolveLayers(model: EngineModel, layers: LayerChannels[]): { layer: number; channels: number[] }[] {
  return layers.map(({ layer, channels }) => {
    const conv = model.convLayers[layer];
    if (!Number.isInteger(layer) || conv === undefined) {
      throw invalidArgument(`conv layer ${layer} does not exist (the model has ${model.convLayers.length} conv layers, 0..${model.convLayers.length - 1})`);
    }
    const list = channels && channels.length > 0 ? channels : Array.from({ length: conv.channels }, (_, k) => k);
    for (const k of list) {
      if (!Number.isInteger(k) || k < 0 || k >= conv.channels) {
        throw invalidArgument(`channel ${k} does not exist in conv layer ${layer} (${conv.node}: ${conv.channels} channels)`);
      }
    }
    return { layer, channels: list };
  });
}

function checkClasses(model: EngineModel, classes: number[]): void {
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= model.classes) {
      throw invalidArgument(`class ${c} does not exist (the model has ${model.classes} classes)`);
    }
  }
}

/**
 * Bytes one row of a chunk holds on this side: its output image plus what the method's wrappers hold
 * (running sums, the wrapped method's result). The engine splits a call further to fit its own budget
 * for the backward's feature maps.
 */
export function bytesPerRow(model: EngineModel, method: ResolvedMethod): number {
  return methodRowBytes(method, inputSize(model));
}

export function chunkRows(model: EngineModel, method: ResolvedMethod, opts: ChunkingOptions): number {
  if (opts.chunk !== undefined) {
    if (!Number.isInteger(opts.chunk) || opts.chunk < 1) throw invalidArgument(`chunk must be a positive integer, got ${opts.chunk}`);
    return opts.chunk;
  }
  const budget = opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_CONCURRENCY);
  return Math.max(1, Math.floor(budget / concurrency / bytesPerRow(model, method)));
}

/** Checks the input against the model and resolves the method (its defaults filled in). */
function checkAttribution(model: EngineModel, input: Float32Array, s: AttributionSettings): ResolvedMethod {
  const size = inputSize(model);
  if (input.length !== size) {
    throw invalidArgument(`input has ${input.length} values, the model takes ${model.graph.input.shape.join('×')} = ${size}`);
  }
  return resolveMethod(s, size);
}

/** Attribution images [B, C, H, W] of one target under a method of the registry. */
export async function attributeWith(
  engine: Engine,
  model: EngineModel,
  input: Float32Array,
  target: AttributionTarget,
  settings: AttributionSettings,
  signal?: AbortSignal,
): Promise<Float32Array> {
  const method = checkAttribution(model, input, settings);
  return methodAttributor(engine, model, target, method, signal)(input);
}

/** Runs tasks with up to `concurrency` in flight and yields their results in task order. */
export async function* inOrder<T, R>(
  tasks: T[],
  concurrency: number,
  run: (task: T) => Promise<R>,
  signal?: AbortSignal,
): AsyncGenerator<R> {
  const inflight: Promise<R>[] = [];
  let next = 0;
  while (next < tasks.length || inflight.length > 0) {
    while (inflight.length < Math.max(1, concurrency) && next < tasks.length) {
      throwIfAborted(signal);
      const p = run(tasks[next++]);
      p.catch(() => undefined); // awaited below; avoids an unhandled rejection if the consumer stops early
      inflight.push(p);
    }
    const result = await inflight.shift()!;
    throwIfAborted(signal);
    yield result;
  }
}

function planChunks(model: EngineModel, method: ResolvedMethod, opts: NeuronImagesOptions): ChunkTask[] {
  const rows = chunkRows(model, method, opts);
  const objective = opts.objective ?? 'abs_sum';
  const tasks: ChunkTask[] = [];
  const classes = opts.classes ?? [];
  for (let i = 0; i < classes.length; i += rows) {
    const part = classes.slice(i, i + rows);
    tasks.push({ layer: -1, neurons: part, target: { kind: 'logit', classes: part } });
  }
  for (const { layer, channels } of resolveLayers(model, opts.layers)) {
    for (let i = 0; i < channels.length; i += rows) {
      const part = channels.slice(i, i + rows);
      tasks.push({ layer, neurons: part, target: { kind: 'conv', layer, channels: part, objective } });
    }
  }
  return tasks;
}

/** Attribution images chunk by chunk: class logits first (layer −1), then the layers in the order given. */
export async function* neuronImageChunks(opts: NeuronImagesOptions): AsyncGenerator<NeuronImageChunk> {
  const { engine, model, input, signal } = opts;
  const method = checkAttribution(model, input, opts);
  checkClasses(model, opts.classes ?? []);
  const tasks = planChunks(model, method, opts);
  const total = tasks.reduce((n, t) => n + t.neurons.length, 0);
  const size = input.length;
  let done = 0;
  const run = async (task: ChunkTask): Promise<{ task: ChunkTask; images: Float32Array }> => {
    const images = await methodAttributor(engine, model, task.target, method, signal)(input);
    if (images.length !== task.neurons.length * size) {
      throw invalidArgument(`engine ${engine.kind} returned ${images.length} values for ${task.neurons.length} images of ${size}`);
    }
    return { task, images };
  };
  for await (const { task, images } of inOrder(tasks, opts.concurrency ?? DEFAULT_CONCURRENCY, run, signal)) {
    done += task.neurons.length;
    yield { layer: task.layer, neurons: task.neurons, images, done, total };
  }
}

/** One item per neuron image, in the order of `neuronImageChunks`. */
export async function* neuronImages(opts: NeuronImagesOptions): AsyncGenerator<NeuronImage> {
  const size = opts.input.length;
  for await (const chunk of neuronImageChunks(opts)) {
    const before = chunk.done - chunk.neurons.length;
    for (let b = 0; b < chunk.neurons.length; b++) {
      const image = chunk.images.subarray(b * size, (b + 1) * size);
      yield { layer: chunk.layer, neuron: chunk.neurons[b], image, allZero: isAllZero(image), done: before + b + 1, total: chunk.total };
    }
  }
}
