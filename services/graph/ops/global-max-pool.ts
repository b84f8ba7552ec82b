/** Max over the spatial axes: [C,H,W] → [C,1,1] (backward: services/graph/backward.ts's arg-max routing). */
import * as tf from '@tensorflow/tfjs-core';
import { globalPoolShape, readKerasGlobal, readOnnxGlobal, readOnnxReduce } from './global-pooling';
import { defineOp } from './op';

export const globalMaxPool = defineOp({
  op: 'global_max_pool',
  summary: 'max over H, W: [C,H,W] → [C,1,1]',
  shape: globalPoolShape,
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('GlobalMaxPool', [x!], {}, o),
  tfjs: (_op, [x]) => tf.max(x!, [1, 2], true),
  onnx: { GlobalMaxPool: readOnnxGlobal('global_max_pool'), ReduceMax: readOnnxReduce('global_max_pool') },
  kerasLayers: { GlobalMaxPooling2D: readKerasGlobal('global_max_pool') },
  traits: { zeroPreserving: () => true },
});
