/** Mean over the spatial axes: [C,H,W] → [C,1,1] (backward: services/graph/backward.ts). */
import * as tf from '@tensorflow/tfjs-core';
import { globalPoolShape, readKerasGlobal, readOnnxGlobal, readOnnxReduce } from './global-pooling';
import { defineOp } from './op';

export const globalAvgPool = defineOp({
  op: 'global_avg_pool',
  summary: 'mean over H, W: [C,H,W] → [C,1,1]',
  shape: globalPoolShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('GlobalAveragePool', [x!], {}, o),
  tfjs: (_op, [x]) => tf.mean(x!, [1, 2], true),
  onnx: { GlobalAveragePool: readOnnxGlobal('global_avg_pool'), ReduceMean: readOnnxReduce('global_avg_pool') },
  kerasLayers: { GlobalAveragePooling2D: readKerasGlobal('global_avg_pool') },
  traits: { zeroPreserving: () => true },
});
