/** A model the service has loaded: its identity, its graph as engines see it, and how to feed it. */
import type { EngineModel } from '../engines/engine';
import type { DenseLayer } from '../graph/ir';
import type { PreprocessSpec } from '../data/preprocessing';

export type ModelFormatName = 'onnx' | 'tfjs-layers';

export interface LoadedModel {
  name: string;
  format: ModelFormatName;
  sha256: string;
  sizeBytes: number;
  /** Path relative to the model root, or 'upload'. */
  source: string;
  engineModel: EngineModel;
  denseLayers: DenseLayer[];
  /** [C, H, W] */
  inputShape: [number, number, number];
  preprocessing: PreprocessSpec;
  classNames: string[];
  parameters: number;
  ops: string[];
}
