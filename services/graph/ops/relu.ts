/** ReLU: max(x, 0). Read from ONNX Relu (and Clip(0, ∞), see ./clip.ts), Keras `relu` and the ReLU layer. */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import type { IrOp } from '../ir';
import { defineOp, gatedBackward, sameShape } from './op';

export const relu = defineOp({
  op: 'relu',
  summary: 'max(x, 0)',
  shape: sameShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('Relu', [x!], {}, o),
  tfjs: (_op, [x]) => tf.relu(x!),
  // gradient: gy · [x > 0]; guided: relu(gy) · [x > 0]; deconv: relu(gy) (the forward mask is ignored)
  backward: (_op, cx) => (cx.rule === 'deconv' ? cx.give(0, cx.b.node('Relu', [cx.gy])) : gatedBackward(cx, cx.positive(cx.x()))),
  onnx: {
    Relu: (cx) => cx.bindOut(cx.emit({ op: 'relu' }, [cx.dataIn(0)])),
  },
  kerasActivations: { relu: () => ({ op: 'relu' }) },
  kerasLayers: {
    // Keras' ReLU layer: max_value makes a clip, negative_slope a leaky ReLU.
    ReLU: (cx) => {
      const cfg = cx.config;
      const x = cx.one();
      const maxValue = cfg.max_value === null || cfg.max_value === undefined ? null : Number(cfg.max_value);
      const slope = Number(cfg.negative_slope ?? 0);
      const threshold = Number(cfg.threshold ?? 0);
      if (threshold !== 0) throw unimplemented(`layer ${cx.name} (ReLU): threshold ${threshold} is not supported`);
      if (slope !== 0 && maxValue !== null) {
        throw unimplemented(`layer ${cx.name} (ReLU): negative_slope together with max_value is not supported`);
      }
      const op: IrOp =
        slope !== 0 ? { op: 'leaky_relu', alpha: slope } : maxValue !== null ? { op: 'clip', min: 0, max: maxValue } : { op: 'relu' };
      return { name: cx.addNode(cx.name, op, [x.name], x.shape), shape: x.shape, perm: x.perm };
    },
  },
  traits: { activation: true, zeroBelowZero: () => true, zeroPreserving: () => true },
});
