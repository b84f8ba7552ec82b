/**
 * What the system knows about one IR op, in one place (an `OpDef`, one module per op under this folder,
 * registered in ./index.ts): how it is read from ONNX and from Keras/tfjs, its shape rule, its forward form
 * for each engine (ONNX emission for onnxruntime, tfjs ops), its backward rule per attribution rule, and its
 * traits for layer listings and pruning.
 *
 * The contexts below are the small interfaces each facet is written against; the machinery behind them
 * (the ONNX importer's folding, the tfjs importer's layout bookkeeping, the attribution builder) stays in
 * the files that own it.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { IrNode, IrOp, OpName, Shape, WeightTensor } from '../ir';
import type { NodeAttributes } from '../onnx-attributes';
import type { ConstTensor } from '../onnx-const-eval';
import type { OnnxBuilder } from '../onnx-builder';
import type { PreparedModel } from '../../engines/tfjs/prepared';

/** The IR op record of op name K. */
export type OpOf<K extends OpName> = Extract<IrOp, { op: K }>;

export type AttributionRule = 'gradient' | 'guided' | 'deconv';

// ---- shape ----

export interface ShapeContext {
  /** A weight of the graph (invalidArgument naming it when missing). */
  weight(name: string): WeightTensor;
  /** "node 'x'", for messages. */
  what: string;
}

// ---- ONNX import ----

/** One ONNX node that reads input-dependent data, as an op module's reader sees it (services/graph/onnx-import.ts). */
export interface OnnxReadContext {
  readonly opType: string;
  /** The node's name (generated from op type and index when the model has none). */
  readonly name: string;
  readonly attrs: NodeAttributes;
  readonly opset: number;
  /** How many inputs the node lists (absent optional ones included, as ''). */
  readonly inputCount: number;
  /** The ONNX name of input i ('' when absent). */
  inputName(i: number): string;
  /** The IR value of input i; fails when it is a constant or missing. */
  dataIn(i: number): string;
  /** The IR value of input i, or undefined when it is a constant or absent. */
  dataOf(i: number): string | undefined;
  /** Constant input i (undefined when absent); fails when it depends on the model input. */
  constIn(i: number, what: string): ConstTensor | undefined;
  /** Appends an IR node (its output named after the ONNX output, plus `suffix`); returns its IR value. */
  emit(op: IrOp, inputs: string[], suffix?: string): string;
  /** Binds the node's (first) ONNX output to IR value `v`. */
  bindOut(v: string): void;
  /** The node is an alias: its output is input 0 (Identity-like; no IR node). */
  alias(): void;
  /** Per-sample shape of an IR value. */
  shapeOf(v: string): Shape;
  /** A new IR weight (name made unique from `base`). */
  newWeight(base: string, shape: number[], data: Float32Array): string;
  /** A weight of the graph being built. */
  weight(name: string): WeightTensor;
  /** An IR constant node holding `c` (batch dimension dropped) as a per-sample value. */
  constantValue(c: ConstTensor, dims: number[], suffix: string): string;
  /** Throws unimplemented naming the op type and node. */
  fail(why: string): never;
}

export type OnnxReader = (cx: OnnxReadContext) => void;

// ---- Keras / tfjs LayersModel import ----

/** One Keras tensor as the tfjs importer holds it (services/graph/tfjs-import.ts). */
export interface KerasValue {
  name: string;
  shape: Shape;
  /** Vectors only: the Keras index of each IR element (a Flatten over NHWC reorders). */
  perm: Int32Array | null;
  /** The conv node (and its Keras layer) that produced this value with no activation: a BatchNormalization may fold into it. */
  foldable?: { node: IrNode; layer: string };
}

/** One Keras layer as an op module's reader sees it. */
export interface KerasReadContext {
  readonly className: string;
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly inputs: KerasValue[];
  /** The single input (invalidArgument when there are several). */
  one(): KerasValue;
  /** The [C, H, W] of a feature-map input, checking channels_last. */
  requireMap(x: KerasValue): [number, number, number];
  /** Appends an IR node with the given output shape; returns its IR value name. */
  addNode(name: string, op: IrOp, inputs: string[], shape: Shape): string;
  /** A weight of the layer from the manifest (`${layer}/${suffix}`). */
  weight(suffix: string, required?: boolean): WeightTensor | undefined;
  addWeight(name: string, shape: number[], data: Float32Array): string;
  /** invalidArgument unless weight `t` has this shape. */
  expectShape(t: WeightTensor, shape: number[]): void;
  /** The IR node producing value `v`. */
  nodeOf(v: string): IrNode;
  /** Applies the Keras activation `act` (by name) to `x`. */
  activation(x: KerasValue, act: string, nodeName: string): KerasValue;
  /** The per-sample reshape of `x` to a vector (Keras' Flatten, with its element-order bookkeeping). */
  flatten(name: string, x: KerasValue): KerasValue;
}

export type KerasReader = (cx: KerasReadContext) => KerasValue;

/** What a Keras activation's definition may depend on. */
export interface KerasActivationContext {
  /** Major version of the Keras that wrote the model (2 for tfjs-layers and tf.keras; 3 for Keras 3). */
  kerasMajor: number;
}

/** A Keras activation by name (`activation: 'relu'` in a layer config) as an IR op. */
export type KerasActivation = (cx: KerasActivationContext) => IrOp;

// ---- ONNX forward emission ----

/** What a forward emitter offers an op (services/graph/ir-to-onnx.ts's ForwardEmitter). */
export interface EmitContext {
  readonly b: OnnxBuilder;
  /** An initializer for IR weight `name` with the given dims (default: its own shape), once per dims. */
  init(name: string, dims?: number[]): string;
  /** Per-channel weight as [C,1,1] (rank-3 values) or [C] (vectors). */
  channelInit(name: string, valueRank: number): string;
  weightOf(name: string): WeightTensor;
  /** [1] holding the batch size. */
  batchDim(): string;
  /** Per-sample shape of an IR value. */
  shape(v: string): Shape;
}

// ---- tfjs forward ----

/**
 * tfjs forward of one node: tensors in the tfjs engine's layout (services/engines/tfjs/layout.ts: feature
 * maps NHWC, everything else [N, ...shape]).
 */
export interface TfjsContext {
  readonly pm: PreparedModel;
  readonly node: IrNode;
  /** Per-sample shape of input i / of the output. */
  inShape(i?: number): Shape;
  outShape(): Shape;
}

// ---- backward (attribution graphs) ----

/**
 * The backward of one node in an attribution graph (services/graph/backward.ts): ONNX values carry a
 * leading batch of B seed rows; forward values are batch 1 and broadcast.
 */
export interface BackwardContext {
  readonly b: OnnxBuilder;
  readonly rule: AttributionRule;
  readonly node: IrNode;
  /** The gradient at the node's output, [B, ...out]. */
  readonly gy: string;
  /** Forward value (batch 1) of input k. */
  x(k?: number): string;
  /** Forward value (batch 1) of the output. */
  y(): string;
  inShape(k?: number): Shape;
  outShape(): Shape;
  /** 1 where x > 0, else 0 (float). */
  positive(x: string): string;
  /** Hands the gradient of input k to the builder. */
  give(k: number, gx: string): void;
  init(name: string, dims?: number[]): string;
  channelInit(name: string, valueRank: number): string;
}

// ---- the definition ----

export interface OpTraits {
  /** An elementwise activation (the activation of a conv layer in layer listings). */
  activation?: boolean;
  /** Maps every value ≤ 0 to exactly 0 (a channel ≤ 0 everywhere is silent after it). */
  zeroBelowZero?: (op: IrOp) => boolean;
  /** Acts per channel and maps an all-zero channel to an all-zero channel (physical channel removal). */
  zeroPreserving?: (op: IrOp) => boolean;
}

export interface OpDef<K extends OpName = OpName> {
  readonly op: K;
  /** One line for docs and listings. */
  readonly summary: string;
  /** Per-sample output shape for inputs of these per-sample shapes. */
  shape(op: OpOf<K>, inputs: Shape[], cx: ShapeContext): Shape;
  /** IR weights the op refers to (default: none). */
  weights?(op: OpOf<K>): string[];
  /** ONNX forward emission (opset of services/graph/ir-to-onnx.ts's EXPORT_OPSET); returns the output value `o`. */
  emitOnnx(op: OpOf<K>, cx: EmitContext, node: IrNode, inputs: string[], o: string): string;
  /** tfjs forward. */
  tfjs(op: OpOf<K>, ins: tf.Tensor[], cx: TfjsContext): tf.Tensor;
  /**
   * Backward rule for each attribution rule. Absent only for ops whose backward lives in the attribution
   * builder itself (conv and pooling: their device-specific forms).
   */
  backward?(op: OpOf<K>, cx: BackwardContext): void;
  /** ONNX op types this module reads, and how. */
  readonly onnx?: Readonly<Record<string, OnnxReader>>;
  /** Keras layer classes this module reads, and how. */
  readonly kerasLayers?: Readonly<Record<string, KerasReader>>;
  /**
   * The order of each such layer class's variables as Keras 3 creates them (its config decides which exist):
   * tensorflowjs_converter names the weights of a Keras 3 `.keras` file by position, `<layer>/vars/<i>`.
   */
  readonly kerasVariables?: Readonly<Record<string, (config: Record<string, unknown>) => string[]>>;
  /** Keras activation names this module reads (layer `activation` fields and Activation layers). */
  readonly kerasActivations?: Readonly<Record<string, KerasActivation>>;
  readonly traits?: OpTraits;
}

/** Builds a definition with its op type checked against K. */
export function defineOp<K extends OpName>(def: OpDef<K>): OpDef<K> {
  return def;
}

// ---- shared rule pieces ----

/**
 * The service's rule at a non-ReLU elementwise activation with derivative `d` (a batch-1 value):
 * gradient: gy · d; guided and deconv: relu(gy) · d (negative incoming gradients dropped).
 */
export function gatedBackward(cx: BackwardContext, d: string): void {
  const g = cx.rule === 'gradient' ? cx.gy : cx.b.node('Relu', [cx.gy]);
  cx.give(0, cx.b.node('Mul', [g, d]));
}

/** Shape rule of elementwise one-input ops. */
export const sameShape = (_op: unknown, inputs: Shape[]): Shape => [...inputs[0]!];
