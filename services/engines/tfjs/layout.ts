/**
 * How IR values (per-sample NCHW shapes) are laid out as tfjs tensors: feature maps [C, H, W] as NHWC
 * [N, H, W, C] (tfjs convolutions and pooling want channels last), everything else as [N, ...shape].
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Shape } from '../../graph/ir';

export const isMap = (s: Shape): boolean => s.length === 3;

/** Tensor shape holding `n` samples of per-sample IR shape `s`. */
export function layoutShape(n: number, s: Shape): number[] {
  return isMap(s) ? [n, s[1]!, s[2]!, s[0]!] : [n, ...s];
}

/** Tensor axis of per-sample IR axis `a` of a value of shape `s`. */
export function tensorAxis(s: Shape, a: number): number {
  return isMap(s) ? [3, 1, 2][a]! : a + 1;
}

/** A tensor in layout from NCHW-ordered data of `n` samples. */
export function fromNchw(data: Float32Array, n: number, s: Shape): tf.Tensor {
  if (!isMap(s)) return tf.tensor(data, [n, ...s], 'float32');
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, s[0]!, s[1]!, s[2]!]), [0, 2, 3, 1]));
}

/** The tensor with its elements in NCHW order per sample (a new tensor). */
export function toNchw(t: tf.Tensor, s: Shape): tf.Tensor {
  return isMap(s) ? tf.transpose(t, [0, 3, 1, 2]) : tf.clone(t);
}

/** Inverse of `toNchw`: NCHW-ordered [N, ...s] (any shape with the same size) into layout. */
export function fromNchwTensor(t: tf.Tensor, s: Shape): tf.Tensor {
  const n = t.shape[0]!;
  return isMap(s) ? tf.transpose(tf.reshape(t, [n, s[0]!, s[1]!, s[2]!]), [0, 2, 3, 1]) : tf.reshape(t, [n, ...s]);
}

/** Explicit padding ([[0, 0], [top, bottom], [left, right], [0, 0]]) as tfjs conv ops take it. */
export function explicitPads(pads: readonly [number, number, number, number]): [[number, number], [number, number], [number, number], [number, number]] {
  return [
    [0, 0],
    [pads[0], pads[2]],
    [pads[1], pads[3]],
    [0, 0],
  ];
}
