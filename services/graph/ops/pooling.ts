/**
 * What max_pool and avg_pool share: their ONNX attributes, ONNX and Keras readers, shape rule and tfjs
 * form (./max-pool.ts, ./avg-pool.ts). Their backward lives in the attribution builder (services/graph/backward.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IrOp, PoolOp, Shape } from '../ir';
import type { Attrs } from '../onnx-builder';
import { avgPoolDivisor, padMap, poolGeometry } from '../../engines/tfjs/tensor-ops';
import type { KerasReadContext, KerasValue, OnnxReadContext, ShapeContext, TfjsContext } from './op';
import { windowSpatial } from './shape-util';
import { kerasPads, kerasPair, onnxPads, onnxPair } from './window';

export function poolAttrs(op: PoolOp): Attrs {
  const a: Attrs = {
    kernel_shape: { ints: op.kernel },
    strides: { ints: op.strides },
    pads: { ints: op.pads },
    ceil_mode: { i: op.ceilMode ? 1 : 0 },
  };
  if (op.op === 'avg_pool') a.count_include_pad = { i: op.countIncludePad ? 1 : 0 };
  return a;
}

export const poolShape = (op: PoolOp, [x]: Shape[], cx: ShapeContext): Shape => [
  x![0]!,
  ...windowSpatial(x!, cx.what, op.kernel, op.strides, op.pads, [1, 1], op.ceilMode),
];

export function poolTfjs(op: PoolOp, [x]: tf.Tensor[], { pm, node }: TfjsContext): tf.Tensor {
  const geo = poolGeometry(op, pm.shape(node.inputs[0]!), pm.shape(node.output));
  if (op.op === 'max_pool') return tf.maxPool(padMap(x!, geo, -Infinity) as tf.Tensor4D, op.kernel, op.strides, 'valid');
  const sum = tf.mul(tf.avgPool(padMap(x!, geo, 0) as tf.Tensor4D, op.kernel, op.strides, 'valid'), op.kernel[0] * op.kernel[1]);
  return tf.div(sum, avgPoolDivisor(pm, node, op, geo));
}

/** ONNX MaxPool / AveragePool. */
export function readOnnxPool(cx: OnnxReadContext, kind: PoolOp['op']): void {
  const x = cx.dataIn(0);
  const shape = cx.shapeOf(x);
  if (shape.length !== 3) return cx.fail(`input must be [C,H,W], got [${shape}]`);
  const ks = cx.attrs.ints('kernel_shape');
  if (!ks || ks.length !== 2) return cx.fail(`kernel_shape [${ks}] is not 2-D`);
  const kernel: [number, number] = [ks[0]!, ks[1]!];
  const strides = onnxPair(cx, 'strides', 1);
  const dil = onnxPair(cx, 'dilations', 1);
  if (dil[0] !== 1 || dil[1] !== 1) return cx.fail(`dilations [${dil}] (pooling supports dilation 1 only)`);
  const pads = onnxPads(cx, shape.slice(1), kernel, strides, [1, 1]);
  const ceilMode = cx.attrs.int('ceil_mode', 0) === 1;
  const countIncludePad = cx.attrs.int('count_include_pad', 0) === 1;
  cx.bindOut(cx.emit({ op: kind, kernel, strides, pads, ceilMode, countIncludePad }, [x]));
}

/** Keras MaxPooling2D / AveragePooling2D. */
export function readKerasPool(cx: KerasReadContext, kind: PoolOp['op']): KerasValue {
  const cfg = cx.config;
  const x = cx.one();
  const [c, h, w] = cx.requireMap(x);
  const kernel = kerasPair(cfg.pool_size ?? 2, cx.name);
  const strides = cfg.strides === null || cfg.strides === undefined ? kernel : kerasPair(cfg.strides, cx.name);
  const pads = kerasPads(String(cfg.padding ?? 'valid'), [h, w], kernel, strides, [1, 1], cx.name);
  const ho = Math.floor((h + pads[0] + pads[2] - kernel[0]) / strides[0]) + 1;
  const wo = Math.floor((w + pads[1] + pads[3] - kernel[1]) / strides[1]) + 1;
  const op: IrOp = {
    op: kind,
    kernel,
    strides,
    pads,
    ceilMode: false,
    countIncludePad: false, // TF's 'same' average pooling divides by the cells inside the image
  };
  const name = cx.addNode(cx.name, op, [x.name], [c, ho, wo]);
  return { name, shape: [c, ho, wo], perm: null };
}
