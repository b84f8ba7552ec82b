/**
 * The graph IR: a small typed DAG of the ops CNNs use, shared by every importer (ONNX, tfjs) and every
 * engine (onnxruntime, tfjs). Layout is NCHW. Shapes in the IR are per sample (no batch dimension):
 * [C, H, W] for feature maps, [F] for vectors. Weights are float32.
 *
 * Conventions
 * - `nodes` are in topological (execution) order; every node has exactly one output value.
 * - A batch-norm directly after a conv is folded into the conv by the importers (SPEC: z_j is taken
 *   after that batch-norm); a batch-norm elsewhere stays as a per-channel `affine` node.
 * - A trailing softmax is removed by the importers: `output` is always the logits.
 * - Dropout and other inference no-ops are removed or become `identity`.
 */

export type Shape = number[];

export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

export type Pair = [number, number];
/** [top, left, bottom, right] */
export type Pads4 = [number, number, number, number];

export interface ConvOp {
  op: 'conv';
  weight: string; // [Cout, Cin / group, kH, kW]
  bias?: string; // [Cout]
  kernel: Pair;
  strides: Pair;
  pads: Pads4;
  dilations: Pair;
  group: number;
  /** Set by importers when a batch-norm that followed this conv was folded into its weight and bias. */
  batchNormFolded?: boolean;
}

export interface PoolOp {
  op: 'max_pool' | 'avg_pool';
  kernel: Pair;
  strides: Pair;
  pads: Pads4;
  ceilMode: boolean;
  /** avg_pool only: whether padded cells count in the divisor. */
  countIncludePad: boolean;
}

export type IrOp =
  | ConvOp
  | PoolOp
  | { op: 'relu' }
  | { op: 'leaky_relu'; alpha: number }
  | { op: 'clip'; min: number; max: number } // ReLU6 = clip(0, 6)
  | { op: 'sigmoid' }
  | { op: 'tanh' }
  | { op: 'hard_sigmoid'; alpha: number; beta: number } // max(0, min(1, alpha·x + beta))
  | { op: 'hard_swish' } // x · max(0, min(1, x/6 + 1/2))
  | { op: 'global_avg_pool' } // [C,H,W] -> [C,1,1]
  | { op: 'global_max_pool' } // [C,H,W] -> [C,1,1]
  | { op: 'affine'; scale: string; shift: string } // per channel (axis 0): y = x * scale[c] + shift[c]; inference BN
  | { op: 'dense'; weight: string; bias?: string } // weight [out, in]; y = W x + b
  | { op: 'flatten' } // any -> [prod]
  | { op: 'reshape'; shape: number[] } // per-sample target shape, fully resolved (no -1)
  | { op: 'add' } // two inputs, same shape (or broadcast of a [C,1,1] / scalar-like second input)
  | { op: 'mul' } // two inputs, elementwise, same broadcasting as add
  | { op: 'concat'; axis: number } // per-sample axis (0 = channels)
  | { op: 'pad'; pads: number[]; value: number } // per-sample [begin_0.., end_0..], constant mode
  | { op: 'slice'; starts: number[]; ends: number[]; axes: number[]; steps: number[] } // per-sample axes, resolved: 0 <= start < dim, end = start + count * step (-1 = through index 0 when step < 0)
  | { op: 'constant'; value: string } // a weight used as a value (broadcast over the batch)
  | { op: 'identity' };

export type OpName = IrOp['op'];

export interface IrNode {
  /** Unique, taken from the source model where it has one (reported in errors and model info). */
  name: string;
  inputs: string[];
  output: string;
  op: IrOp;
}

export interface IrGraph {
  input: { name: string; shape: Shape };
  /** The value holding the logits [classes]. */
  output: string;
  nodes: IrNode[];
  weights: Map<string, WeightTensor>;
  /** Per-sample shape of every value (input, every node output). */
  shapes: Map<string, Shape>;
}

/** A convolution layer as the method sees it: neurons are its output channels. */
export interface ConvLayer {
  index: number; // 0.. in execution order
  node: string; // the conv node's name
  output: string; // the value z_j (after a folded batch-norm, before the activation)
  channels: number;
  shape: Shape; // [C, H, W]
  batchNormFolded: boolean;
  activation: string; // op of the activation applied to z_j ('relu', 'leaky_relu', ...) or ''
}

export interface DenseLayer {
  index: number;
  node: string;
  output: string;
  units: number;
}
