/** Max pooling over 2-D windows (backward: services/graph/backward.ts's arg-max routing). */
import { defineOp } from './op';
import { poolAttrs, poolShape, poolTfjs, readKerasPool, readOnnxPool } from './pooling';

export const maxPool = defineOp({
  op: 'max_pool',
  summary: 'max over 2-D windows',
  shape: poolShape,
  emitOnnx: (op, cx, _n, [x], o) => cx.b.node('MaxPool', [x!], poolAttrs(op), o),
  tfjs: poolTfjs,
  onnx: { MaxPool: (cx) => readOnnxPool(cx, 'max_pool') },
  kerasLayers: { MaxPooling2D: (cx) => readKerasPool(cx, 'max_pool') },
  traits: { zeroPreserving: () => true },
});
