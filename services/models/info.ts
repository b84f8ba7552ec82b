/** A loaded model described as plain data: what ModelInfo carries (the server adds the engines). */
import type { PreprocessSpec } from '../data/preprocessing';
import type { LoadedModel, ModelFormatName } from './model';

export interface TensorDescription {
  name: string;
  /** -1 for the dynamic batch dimension. */
  shape: number[];
}

export interface ConvLayerDescription {
  index: number;
  name: string;
  channels: number;
  /** [C, H, W] for one input. */
  outputShape: number[];
  batchNormFolded: boolean;
  activation: string;
}

export interface DenseLayerDescription {
  index: number;
  name: string;
  units: number;
}

export interface ModelDescription {
  name: string;
  format: ModelFormatName;
  sha256: string;
  sizeBytes: number;
  /** Path relative to the model root, or 'upload'. */
  source: string;
  /** [-1, C, H, W] */
  input: TensorDescription;
  /** [-1, classes] */
  output: TensorDescription;
  convLayers: ConvLayerDescription[];
  denseLayers: DenseLayerDescription[];
  preprocessing: PreprocessSpec;
  classNames: string[];
  parameters: number;
  ops: string[];
}

export function describeModel(m: LoadedModel): ModelDescription {
  const g = m.engineModel.graph;
  return {
    name: m.name,
    format: m.format,
    sha256: m.sha256,
    sizeBytes: m.sizeBytes,
    source: m.source,
    input: { name: g.input.name, shape: [-1, ...m.inputShape] },
    output: { name: g.output, shape: [-1, m.engineModel.classes] },
    convLayers: m.engineModel.convLayers.map((l) => ({
      index: l.index,
      name: l.node,
      channels: l.channels,
      outputShape: [...l.shape],
      batchNormFolded: l.batchNormFolded,
      activation: l.activation,
    })),
    denseLayers: m.denseLayers.map((d) => ({ index: d.index, name: d.node, units: d.units })),
    preprocessing: {
      ...m.preprocessing,
      mean: [...m.preprocessing.mean],
      std: [...m.preprocessing.std],
    },
    classNames: [...m.classNames],
    parameters: m.parameters,
    ops: [...m.ops],
  };
}
