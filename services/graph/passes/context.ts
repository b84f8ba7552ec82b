/**
 * What a device pass sees of the attribution graph being built (../backward.ts): the builder, the forward
 * emitter, shapes, the forward values, and the ReLU rule.
 */
import type { AttributionRule } from '../backward';
import type { IrNode, Shape } from '../ir';
import type { ForwardEmitter } from '../ir-to-onnx';
import type { OnnxBuilder } from '../onnx-builder';

export interface BackwardContext {
  readonly b: OnnxBuilder;
  readonly em: ForwardEmitter;
  readonly rule: AttributionRule;
  /** Per-sample shape of an IR value. */
  shape(v: string): Shape;
  /** The forward (batch 1) graph value of an IR value. */
  fwd(v: string): string;
  /** Cast(x > 0) as float. */
  positive(x: string): string;
  /** One-hot [1, C, H, W] of the arg-max of each window of max-pool node `n`. */
  argMaxOneHot(n: IrNode): string;
  /** A gradient in the batch layout [B, ...] (undoes a pass's own layout, e.g. packed-conv's). */
  batch(v: string): string;
}
