/** Flatten a per-sample value to a vector (NCHW element order). */
import { defineOp } from './op';
import { reshapeTfjs, reshapeTo } from './reshape';
import { shapeSize } from './shape-util';

export const flatten = defineOp({
  op: 'flatten',
  summary: 'any per-sample shape → [size] (NCHW order)',
  shape: (_op, [x]) => [shapeSize(x!)],
  emitOnnx: (_op, cx, _n, [x], o) => cx.b.node('Flatten', [x!], { axis: { i: 1 } }, o),
  tfjs: reshapeTfjs,
  backward: (_op, cx) => cx.give(0, cx.b.node('Reshape', [cx.gy, cx.b.ints('shape', [-1, ...cx.inShape()])])),
  onnx: {
    Flatten: (cx) => {
      const x = cx.dataIn(0);
      const shape = cx.shapeOf(x);
      let axis = cx.attrs.int('axis', 1);
      if (axis < 0) axis += shape.length + 1;
      if (axis === 0 || shape.slice(0, axis - 1).some((d) => d !== 1)) return cx.fail(`axis ${axis} would mix the batch dimension`);
      cx.bindOut(reshapeTo(cx, x, [shapeSize(shape)]));
    },
  },
  // Keras' Flatten of an NHWC map reorders elements: the importer keeps that order (see tfjs-import.ts).
  kerasLayers: { Flatten: (cx) => cx.flatten(cx.name, cx.one()) },
});
