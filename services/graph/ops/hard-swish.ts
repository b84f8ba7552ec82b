/**
 * Hard swish (MobileNetV3): x · hard_sigmoid(x) with alpha 1/6, beta 1/2 = x · relu6(x + 3) / 6.
 * - ONNX HardSwish (opset 14). The forward exporter writes opset 13, so it is emitted as
 *   Mul(x, HardSigmoid(x; 1/6, 1/2)) (HardSigmoid exists since opset 6): the same numbers at any opset.
 * - Keras 3 `hard_silu` and its alias `hard_swish`.
 * Backward: f'(x) = 0 for x ≤ −3, x/3 + 1/2 for −3 < x < 3, 1 for x ≥ 3 (PyTorch's hardswish_backward up to
 * the two points x = ±3); guided / deconv: the service's rule for non-ReLU activations, relu(gy) · f'(x)
 * (f' is negative on (−3, −1.5), so such images may hold negative values there).
 */
import * as tf from '@tensorflow/tfjs-core';
import { defineOp, gatedBackward, sameShape } from './op';

export const hardSwish = defineOp({
  op: 'hard_swish',
  summary: 'x · max(0, min(1, x/6 + 1/2))',
  shape: sameShape,
  emitOnnx: (_op, cx, _n, [x], o) => {
    const b = cx.b;
    return b.node('Mul', [x!, b.node('HardSigmoid', [x!], { alpha: { f: 1 / 6 }, beta: { f: 0.5 } })], {}, o);
  },
  tfjs: (_op, [x]) => tf.mul(x!, tf.clipByValue(tf.add(tf.div(x!, 6), 0.5), 0, 1)),
  backward: (_op, cx) => {
    const b = cx.b;
    const x = cx.x();
    const f = (name: string, v: number): string => b.floats(name, [v], []);
    const mid = b.node('Cast', [b.node('And', [b.node('Greater', [x, f('lo', -3)]), b.node('Less', [x, f('hi', 3)])])], { to: { i: 1 } });
    const above = b.node('Cast', [b.node('GreaterOrEqual', [x, f('hi', 3)])], { to: { i: 1 } });
    const slope = b.node('Add', [b.node('Mul', [x, f('third', 1 / 3)]), f('half', 0.5)]);
    gatedBackward(cx, b.node('Add', [b.node('Mul', [slope, mid]), above]));
  },
  onnx: { HardSwish: (cx) => cx.bindOut(cx.emit({ op: 'hard_swish' }, [cx.dataIn(0)])) },
  kerasActivations: { hard_silu: () => ({ op: 'hard_swish' }), hard_swish: () => ({ op: 'hard_swish' }) },
  // hard_swish(0) = 0 per element: a zero channel stays zero; values in (−3, 0) stay negative, so not zeroBelowZero
  traits: { activation: true, zeroPreserving: () => true },
});
