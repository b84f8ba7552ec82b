/** Average pooling over 2-D windows (backward: services/graph/backward.ts's transposed window). */
import { defineOp } from './op';
import { poolAttrs, poolShape, poolTfjs, readKerasPool, readOnnxPool } from './pooling';

export const avgPool = defineOp({
  op: 'avg_pool',
  summary: 'mean over 2-D windows (countIncludePad: whether padded cells count)',
  shape: poolShape,
  emitOnnx: (op, cx, _n, [x], o) => cx.b.node('AveragePool', [x!], poolAttrs(op), o),
  tfjs: poolTfjs,
  onnx: { AveragePool: (cx) => readOnnxPool(cx, 'avg_pool') },
  kerasLayers: { AveragePooling2D: (cx) => readKerasPool(cx, 'avg_pool') },
  traits: { zeroPreserving: () => true },
});
