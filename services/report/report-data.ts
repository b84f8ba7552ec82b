/**
 * What a report shows. Plain data (numbers, strings, PNG bytes): the CLI fills it from RPC responses,
 * tests and scripts from services directly. Every section but the header and parameters is optional.
 */

/** A PNG image (bytes) shown with a caption. */
export interface ReportImage {
  png: Uint8Array;
}

export interface ReportAverage {
  classIndex: number;
  png: Uint8Array;
  /** softmax(class) of the average image itself. */
  confidence: number;
  predicted: number;
  imagesUsed?: number;
  /** Activation maximisation: gradient steps taken. */
  steps?: number;
}

export interface ReportConfidence {
  /** Class of each row's average. */
  rowClasses: number[];
  /** Row-major rows × classes softmax probabilities (row = average of class rowClasses[r]). */
  probabilities: ArrayLike<number>;
}

export interface ReportCurves {
  classes: number[];
  /** Conv layer indices (the x axis). */
  layers: number[];
  /** classes × layers, row-major. */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  meanOverClasses: ArrayLike<number>;
  stdOverClasses: ArrayLike<number>;
  /** classes × layers. */
  deadCount: ArrayLike<number>;
}

export interface ReportRankedNeuron {
  neuron: number;
  value: number;
  png: Uint8Array;
}

export interface ReportGallery {
  classIndex: number;
  layer: number;
  highest: ReportRankedNeuron[];
  lowest: ReportRankedNeuron[];
  /** Channels whose image is all zeros for this class. */
  dead: number[];
  channels: number;
}

export interface ReportSanityDepth {
  depth: number;
  reinitialised: string[];
  /** Per layer of the similarity curves' `layers`. */
  meanOverClasses: ArrayLike<number>;
}

export interface ReportData {
  title: string;
  modelName: string;
  modelSha256?: string;
  dataset?: string;
  /** ISO time the report was made (shown as given). */
  generatedAt?: string;
  classNames: string[];
  /** Names of the conv layers by index (node names), for axis tooltips and headings. */
  layerNames?: string[];
  /** The request parameters, shown as a table. */
  parameters: Record<string, unknown>;
  averages?: ReportAverage[];
  confidence?: ReportConfidence;
  curves?: ReportCurves;
  galleries?: ReportGallery[];
  sanity?: ReportSanityDepth[];
}
