/**
 * NeuronImages' input (InputSpec) → the job's input: a class-average image (computed or taken from the
 * cache by the job), a tensor (float32 [C, H, W] in input space, or uint8 [H, W, C] raw pixels), PNG/JPEG
 * bytes, or a sample of a registered data set (read by the job). Errors name the field under `input`.
 */
import type { InputSpec } from '../../api/generated/introspect/v1/analysis';
import { pixelsToInputSpace } from '../../services/data/preprocess';
import { invalidArgument } from '../../services/errors';
import { decodePixels } from '../../services/images/png';
import type { NeuronInput } from '../../services/jobs/images';
import type { LoadedModel } from '../../services/models/model';
import { splitFromWire } from '../convert';
import { decodeTensor } from '../tensors';
import type { AnalysisDeps } from './analysis';
import { averageFromWire, inputSpaceImage } from './analysis-requests';
import { analysedClasses } from './analysis-selections';
import { datasetNamed, type ModelContext } from './common';

function checkChannels(c: number, model: LoadedModel, name: string): void {
  const C = model.inputShape[0];
  if (!(c === C || (c === 1 && C === 3) || (c === 3 && C === 1))) {
    throw invalidArgument(`${name}: an image with ${c} channels cannot feed model '${model.name}' (${C} input channel${C === 1 ? '' : 's'}; give 1 or 3)`);
  }
}

export function neuronInputFromWire(deps: AnalysisDeps, mc: ModelContext, spec: InputSpec | undefined): NeuronInput {
  const model = mc.model;
  const source = spec?.source;
  if (!source) {
    throw invalidArgument('input is required: set input.class_average, input.tensor, input.encoded (PNG/JPEG) or input.sample');
  }
  switch (source.$case) {
    case 'classAverage': {
      const ref = source.value;
      const dataset = datasetNamed(deps.app, ref.dataset, 'input.class_average.dataset');
      const settings = averageFromWire(ref.average, 'input.class_average.average');
      const [classIndex] = analysedClasses([ref.classIndex], model, dataset, 'input.class_average.class_index');
      return { kind: 'class_average', average: { mc, dataset, settings, classes: [classIndex!], score: false } };
    }
    case 'tensor': {
      const d = decodeTensor(source.value, 'input.tensor');
      if (d.dtype === 'uint8') {
        if (d.shape.length !== 3) throw invalidArgument(`input.tensor.shape [${d.shape.join(', ')}]: raw uint8 pixels must be [H, W, C]`);
        const [h, w, c] = d.shape as [number, number, number];
        checkChannels(c, model, 'input.tensor.shape');
        return { kind: 'image', image: pixelsToInputSpace(d.data, 1, h, w, c, model.preprocessing, model.inputShape) };
      }
      return { kind: 'image', image: inputSpaceImage(source.value, model.engineModel, 'input.tensor') };
    }
    case 'encoded': {
      if (source.value.byteLength === 0) throw invalidArgument('input.encoded is empty');
      const img = decodePixels(source.value, 'input.encoded');
      checkChannels(img.channels, model, 'input.encoded');
      return { kind: 'image', image: pixelsToInputSpace(img.pixels, 1, img.height, img.width, img.channels, model.preprocessing, model.inputShape) };
    }
    case 'sample': {
      const s = source.value;
      const dataset = datasetNamed(deps.app, s.dataset, 'input.sample.dataset');
      const split = splitFromWire(s.split, 'input.sample.split');
      const info = dataset.summary.splits.find((x) => x.split === split);
      if (!info) throw invalidArgument(`input.sample.split: dataset '${dataset.summary.name}' has no ${split} split`);
      if (s.index >= info.count) {
        throw invalidArgument(`input.sample.index = ${s.index} is outside the ${split} split of '${dataset.summary.name}' (0..${info.count - 1})`);
      }
      return { kind: 'sample', dataset, split, index: s.index };
    }
  }
}
