/**
 * The NeuronImages job (attribution images of conv channels and class logits on one input image) and
 * the DatasetExamples job (the K images of a split that activate each channel most).
 */
import { datasetExamples, type DatasetExamplesEvent } from '../analysis/examples';
import { neuronImages, type AttributionSettings, type LayerChannels, type NeuronImage } from '../analysis/neuron-images';
import type { Dataset, SplitName } from '../data/dataset';
import { decodeSize, toInputSpace } from '../data/preprocess';
import { invalidArgument, throwIfAborted } from '../errors';
import { collectAverages, type AverageJob } from './averages';
import type { JobContext, ModelContext } from './context';

/** The image the attributions are computed on. */
export type NeuronInput =
  /** Already in the model's input space [C, H, W]. */
  | { kind: 'image'; image: Float32Array }
  /** A class-average image (one class; from the averages cache when there). */
  | { kind: 'class_average'; average: AverageJob }
  /** One sample of a data set (the index checked against the split). */
  | { kind: 'sample'; dataset: Dataset; split: SplitName; index: number };

export interface NeuronImagesJob extends AttributionSettings {
  mc: ModelContext;
  input: NeuronInput;
  layers: Required<LayerChannels>[];
  classes: number[];
}

/** The input image of a job, in the model's input space. */
export async function neuronInputImage(ctx: JobContext, mc: ModelContext, input: NeuronInput, signal: AbortSignal): Promise<Float32Array> {
  switch (input.kind) {
    case 'image':
      return input.image;
    case 'class_average': {
      const [a] = await collectAverages(ctx, input.average, signal);
      return a!.image;
    }
    case 'sample': {
      const { dataset, split, index } = input;
      const model = mc.model;
      const size = decodeSize(dataset.summary, model.preprocessing, model.inputShape);
      for await (const batch of dataset.batches(split, { batchSize: 1, indices: [index], size, signal })) {
        throwIfAborted(signal);
        return toInputSpace(batch, model.preprocessing, model.inputShape);
      }
      throw invalidArgument(`input.sample: dataset '${dataset.summary.name}' returned no image for index ${index}`);
    }
  }
}

export async function* runNeuronImages(ctx: JobContext, job: NeuronImagesJob, signal: AbortSignal): AsyncGenerator<NeuronImage> {
  const { mc, input: source, layers, classes, ...attribution } = job;
  const input = await neuronInputImage(ctx, mc, source, signal);
  for await (const n of neuronImages({ ...attribution, engine: mc.engine, model: mc.model.engineModel, input, layers, classes, signal })) {
    ctx.observe.imagesComputed('neuron_image', 1);
    yield n;
  }
}

export interface ExamplesJob {
  mc: ModelContext;
  dataset: Dataset;
  split: SplitName;
  layer: number;
  channels: number[];
  k: number;
  /** 0: scan the whole split. */
  limit: number;
}

/** One entry per (channel, rank), highest activation first; `done`/`total` count those entries. */
export async function* runExamples(_ctx: JobContext, job: ExamplesJob, signal: AbortSignal): AsyncGenerator<Extract<DatasetExamplesEvent, { kind: 'example' }>> {
  for await (const e of datasetExamples({
    engine: job.mc.engine,
    model: job.mc.model.engineModel,
    preprocessing: job.mc.model.preprocessing,
    dataset: job.dataset,
    split: job.split,
    layer: job.layer,
    channels: job.channels,
    k: job.k,
    limit: job.limit,
    signal,
  })) {
    if (e.kind === 'example') yield e;
  }
}
