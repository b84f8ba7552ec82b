/**
 * What an engine can do with a model. Two implementations run every model of either format:
 * onnxruntime (services/engines/onnxruntime) and tfjs (services/engines/tfjs). The same test suite runs
 * against both, and each checks the other.
 *
 * All tensors are float32, NCHW, in the model's input space (after preprocessing).
 */
import type { ConvLayer, IrGraph } from '../graph/ir';

/** A registered engine's name (./registry.ts; the built-in ones are 'onnxruntime' and 'tfjs'). */
export type EngineKind = string;

export interface EngineStatus {
  kind: EngineKind;
  /** 'cpu', 'cuda:0', 'wasm', ... */
  device: string;
  /** onnxruntime: 'cpu' | 'cuda'; tfjs: 'tensorflow' | 'wasm' | 'cpu'. */
  backend: string;
  /** Why a fallback from the configured device happened, if one did ('' otherwise). */
  note: string;
}

/** A model as engines see it: the IR plus a stable identity (content hash) for their caches. */
export interface EngineModel {
  id: string; // sha256 of the model file
  graph: IrGraph;
  convLayers: ConvLayer[];
  classes: number;
}

/** Channels to zero (weights and bias of the conv), by conv layer index. For pruning. */
export type ChannelMask = Map<number, Uint32Array>;

export interface RunOptions {
  signal?: AbortSignal;
  /** Zero these conv channels (their z_j is 0) for this run. */
  mask?: ChannelMask;
}

/** Per-channel statistics of a conv layer's output after its activation, for each image of a batch. */
export interface LayerActivations {
  layer: number;
  channels: number;
  /** [N, C]: spatial mean of the activation. Serves dataset examples and layer probes (pooled features). */
  mean: Float32Array;
  /** [N, C]: fraction of spatial positions whose activation is exactly <= 0 (APoZ). */
  zeroFraction: Float32Array;
}

export type ReluRule = 'gradient' | 'guided' | 'deconv';
export type NeuronObjective = 'abs_sum' | 'relu_sum';

/**
 * Where a backward pass stops instead of the input: conv layer `layer`'s output z_k (`at: 'conv'`) or its
 * activation A_k (`at: 'activation'`, the default; Grad-CAM's d(logit_c)/d(A_k)).
 */
export interface LayerPoint {
  layer: number;
  at?: 'conv' | 'activation';
}

export interface AttributeOptions extends RunOptions {
  /** Differentiate with respect to this layer's output: rows are [C_k, H_k, W_k] instead of input images. */
  wrt?: LayerPoint;
}

/** What the backward pass starts from; one batch row per neuron. */
export type AttributionTarget =
  | { kind: 'conv'; layer: number; channels: number[]; objective: NeuronObjective }
  | { kind: 'logit'; classes: number[] };

export interface Engine {
  readonly kind: EngineKind;
  status(): EngineStatus;
  /** Logits [N, classes] for N images [N, C, H, W]. */
  forward(model: EngineModel, input: Float32Array, n: number, opts?: RunOptions): Promise<Float32Array>;
  /** Per-channel activation statistics of the given conv layers for N images. */
  activations(
    model: EngineModel,
    input: Float32Array,
    n: number,
    layers: number[],
    opts?: RunOptions,
  ): Promise<LayerActivations[]>;
  /**
   * Attribution images [B, C, H, W] for one input image [C, H, W] (forward once, batched backward):
   * row b is d(objective of target b)/d(input) under the ReLU rule. With `opts.wrt`, row b is the derivative
   * with respect to that layer's output instead, [B, C_k, H_k, W_k].
   */
  attribute(
    model: EngineModel,
    input: Float32Array,
    target: AttributionTarget,
    rule: ReluRule,
    opts?: AttributeOptions,
  ): Promise<Float32Array>;
  /** Frees whatever the engine holds for a model (sessions, tensors). */
  release(modelId: string): Promise<void>;
  /** Stops workers and frees everything. */
  close(): Promise<void>;
}
