/**
 * Hard sigmoid: max(0, min(1, alpha·x + beta)).
 * - ONNX HardSigmoid (alpha 0.2, beta 0.5 by default).
 * - Keras `hard_sigmoid`: Keras 2 / tf.keras / tfjs-layers define it as clip(0.2·x + 0.5, 0, 1); Keras 3
 *   as relu6(x + 3) / 6, i.e. alpha 1/6 (the same as PyTorch's Hardsigmoid). The importer says which wrote the model.
 * Backward: derivative alpha inside the linear part (0 < alpha·x + beta < 1, open as in PyTorch), 0 outside;
 * guided / deconv: the service's rule for non-ReLU activations, relu(gy) · f'(x).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IrOp } from '../ir';
import { defineOp, gatedBackward, sameShape, type KerasActivationContext } from './op';

const kerasHardSigmoid = ({ kerasMajor }: KerasActivationContext): IrOp =>
  kerasMajor >= 3 ? { op: 'hard_sigmoid', alpha: 1 / 6, beta: 0.5 } : { op: 'hard_sigmoid', alpha: 0.2, beta: 0.5 };

export const hardSigmoid = defineOp({
  op: 'hard_sigmoid',
  summary: 'max(0, min(1, alpha·x + beta))',
  shape: sameShape,
  emitOnnx: (op, cx, _n, [x], o) => cx.b.node('HardSigmoid', [x!], { alpha: { f: op.alpha }, beta: { f: op.beta } }, o),
  tfjs: (op, [x]) => tf.clipByValue(tf.add(tf.mul(x!, op.alpha), op.beta), 0, 1),
  backward: (op, cx) => {
    const b = cx.b;
    const t = b.node('Add', [b.node('Mul', [cx.x(), b.floats('alpha', [op.alpha], [])]), b.floats('beta', [op.beta], [])]);
    const inside = b.node('And', [b.node('Greater', [t, b.floats('zero', [0], [])]), b.node('Less', [t, b.floats('one', [1], [])])]);
    gatedBackward(cx, b.node('Mul', [b.node('Cast', [inside], { to: { i: 1 } }), b.floats('alpha', [op.alpha], [])]));
  },
  onnx: {
    HardSigmoid: (cx) =>
      cx.bindOut(cx.emit({ op: 'hard_sigmoid', alpha: cx.attrs.float('alpha', 0.2), beta: cx.attrs.float('beta', 0.5) }, [cx.dataIn(0)])),
  },
  kerasActivations: { hard_sigmoid: kerasHardSigmoid },
  // hard_sigmoid(0) = beta: it neither silences ≤ 0 nor keeps a zero channel zero
  traits: { activation: true },
});
