/**
 * Small ONNX models, written with the project's builder, that exercise one group of ops each. Every
 * model has input `x` [N, C, H, W] and output `y`; onnxruntime runs them as they are (the reference) and
 * through importOnnx + exportForward (the path under test).
 */
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { randomArray } from './support';

export interface OpModel {
  name: string;
  input: [number, number, number];
  opset: number;
  bytes: Uint8Array;
  /** The original ends in a softmax, removed by the importer. */
  softmax?: boolean;
  /** Batch size to test with (models that concatenate a constant are only valid ONNX for batch 1). */
  batch?: number;
}

let seed = 100;
const w = (b: OnnxBuilder, dims: number[], scale = 0.5): string =>
  b.floatInit('w', dims, randomArray(dims.reduce((p, q) => p * q, 1), seed++, scale));
const positive = (b: OnnxBuilder, n: number): string =>
  b.floatInit('p', [n], Float32Array.from(randomArray(n, seed++, 0.5), (v) => 1 + v));

function model(
  name: string,
  input: [number, number, number],
  body: (b: OnnxBuilder, x: string) => string,
  opset = 13,
  softmax = false,
  batch = 2,
): OpModel {
  const b = new OnnxBuilder(name);
  const x = b.input('x', ['N', ...input]);
  const y = body(b, x);
  b.node('Identity', [y], {}, 'y');
  b.output('y');
  return { name, input, opset, bytes: b.encode(opset), softmax, batch };
}

const conv = (b: OnnxBuilder, x: string, cin: number, cout: number, k = 3, attrs = {}, group = 1): string =>
  b.node('Conv', [x, w(b, [cout, cin / group, k, k]), w(b, [cout], 0.1)], { pads: { ints: [1, 1, 1, 1] }, group: { i: group }, ...attrs });

export function opModels(): OpModel[] {
  return [
    model('conv: groups, strides, asymmetric pads, dilations', [4, 9, 10], (b, x) =>
      b.node('Conv', [x, w(b, [6, 2, 3, 2])], {
        group: { i: 2 },
        strides: { ints: [2, 1] },
        pads: { ints: [1, 0, 2, 1] },
        dilations: { ints: [2, 1] },
      }),
    ),
    model('conv: depthwise SAME_UPPER, SAME_LOWER, VALID', [4, 9, 9], (b, x) => {
      const d = b.node('Conv', [x, w(b, [4, 1, 3, 3]), w(b, [4], 0.1)], {
        group: { i: 4 },
        auto_pad: { s: 'SAME_UPPER' },
        strides: { ints: [2, 2] },
      });
      const l = b.node('Conv', [d, w(b, [4, 4, 2, 2])], { auto_pad: { s: 'SAME_LOWER' } });
      return b.node('Conv', [l, w(b, [3, 4, 2, 3])], { auto_pad: { s: 'VALID' } });
    }),
    model('batch-norm after conv (folded) and elsewhere (affine)', [3, 8, 8], (b, x) => {
      const bn = (v: string, c: number) =>
        b.node('BatchNormalization', [v, positive(b, c), w(b, [c], 0.3), w(b, [c], 0.3), positive(b, c)], {
          epsilon: { f: 1e-3 },
        });
      const folded = b.node('Relu', [bn(conv(b, x, 3, 4), 4)]);
      const shared = conv(b, folded, 4, 4);
      const notFolded = bn(shared, 4);
      return b.node('Add', [b.node('Relu', [shared]), bn(b.node('Relu', [notFolded]), 4)]);
    }),
    model('activations: LeakyRelu, Sigmoid, Tanh, Clip (inputs), Clip(0,inf)', [3, 6, 6], (b, x) => {
      const c = conv(b, x, 3, 4);
      const l = b.node('LeakyRelu', [c], { alpha: { f: 0.2 } });
      const s = b.node('Sigmoid', [conv(b, l, 4, 4)]);
      const t = b.node('Tanh', [conv(b, s, 4, 4, 3)]);
      const c6 = b.node('Clip', [conv(b, t, 4, 4), b.floats('lo', [-0.1], []), b.floats('hi', [0.3], [])]);
      return b.node('Clip', [conv(b, c6, 4, 4), b.floats('zero', [0], [])]);
    }),
    model(
      'opset 9: Clip, Pad, Slice, Unsqueeze attributes',
      [3, 7, 7],
      (b, x) => {
        const c = b.node('Clip', [conv(b, x, 3, 4)], { min: { f: -0.2 }, max: { f: 0.4 } });
        const p = b.node('Pad', [c], { pads: { ints: [0, 0, 1, 2, 0, 0, 0, 1] }, value: { f: 0.25 } });
        const s = b.node('Slice', [p], { starts: { ints: [1, 1] }, ends: { ints: [100, -1] }, axes: { ints: [2, 3] } });
        const g = b.node('GlobalAveragePool', [s]);
        const f = b.node('Flatten', [g]);
        return b.node('Unsqueeze', [f], { axes: { ints: [2] } });
      },
      9,
    ),
    model('pools: MaxPool ceil/pads and tiling, AveragePool pads with and without counting them, GlobalMaxPool', [3, 11, 11], (b, x) => {
      const c = conv(b, x, 3, 4);
      const m = b.node('MaxPool', [c], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] }, ceil_mode: { i: 1 } });
      const a = b.node('AveragePool', [m], { kernel_shape: { ints: [3, 3] }, strides: { ints: [1, 1] }, pads: { ints: [1, 1, 1, 1] } });
      const a2 = b.node('AveragePool', [a], {
        kernel_shape: { ints: [2, 2] },
        strides: { ints: [2, 2] },
        pads: { ints: [1, 1, 0, 0] },
        count_include_pad: { i: 1 },
        ceil_mode: { i: 1 },
      });
      const tiled = b.node('MaxPool', [a2], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
      return b.node('GlobalMaxPool', [tiled]);
    }),
    model(
      'dense: ReduceMean keepdims=0, Gemm transB=0 alpha beta, MatMul + Add, Dropout, trailing Softmax',
      [3, 6, 6],
      (b, x) => {
        const r = b.node('ReduceMean', [b.node('Relu', [conv(b, x, 3, 8)])], { axes: { ints: [-2, -1] }, keepdims: { i: 0 } });
        const g = b.node('Gemm', [r, w(b, [8, 6]), w(b, [1, 6])], { alpha: { f: 0.7 }, beta: { f: 1.5 } });
        const d = b.node('Dropout', [b.node('Relu', [g])]);
        const m = b.node('Add', [b.node('MatMul', [d, w(b, [6, 5])]), w(b, [5])]);
        return b.node('Softmax', [m], { axis: { i: 1 } });
      },
      13,
      true,
    ),
    model('reshape: Shape/Gather/Concat target, 0 and -1, Squeeze, Unsqueeze, Flatten axis', [4, 4, 4], (b, x) => {
      const c = conv(b, x, 4, 4);
      const n = b.node('Unsqueeze', [b.node('Gather', [b.node('Shape', [c]), b.ints('i0', [0], [])], { axis: { i: 0 } }), b.ints('ax', [0])]);
      const r1 = b.node('Reshape', [c, b.node('Concat', [n, b.ints('t', [2, 2, -1])], { axis: { i: 0 } })]);
      const r2 = b.node('Reshape', [r1, b.ints('t2', [0, 4, 0, -1])]);
      const r3 = b.node('Reshape', [conv(b, r2, 4, 2), b.ints('t3', [-1, 2, 16, 1])]);
      const sq = b.node('Squeeze', [r3, b.ints('ax3', [3])]);
      const un = b.node('Unsqueeze', [sq, b.ints('ax1', [1])]);
      return b.node('Flatten', [un], { axis: { i: 2 } });
    }),
    model('arithmetic: Add/Sub/Mul/Div by constants and by data', [3, 5, 5], (b, x) => {
      const norm = b.node('Div', [b.node('Sub', [x, w(b, [1, 3, 1, 1])]), b.floats('std', [0.7], [])]);
      const c = b.node('Relu', [conv(b, norm, 3, 4)]);
      const full = b.node('Mul', [c, w(b, [4, 5, 5])]);
      const add = b.node('Add', [w(b, [1, 4, 1, 5]), full]);
      const rsub = b.node('Sub', [b.floats('one', [1], []), add]);
      const gate = b.node('Sigmoid', [b.node('GlobalAveragePool', [rsub])]);
      const se = b.node('Mul', [gate, rsub]);
      const diff = b.node('Sub', [se, c]);
      const sum = b.node('Add', [diff, b.node('Mul', [diff, c])]);
      return b.node('Add', [b.node('GlobalMaxPool', [c]), sum]);
    }),
    model(
      'Concat (with a constant), Pad, Slice (negative, strided), Identity',
      [3, 8, 8],
      (b, x) => {
      const c1 = conv(b, x, 3, 4);
      const c2 = conv(b, x, 3, 2);
      const cat = b.node('Concat', [c1, w(b, [1, 1, 8, 8]), c2], { axis: { i: -3 } });
      const p = b.node('Pad', [b.node('Identity', [cat]), b.ints('pads', [0, 1, 2, 0, 0, 0, 1, 3]), b.floats('v', [-0.5], [])]);
      const s = b.node('Slice', [p, b.ints('s', [-9, 1]), b.ints('e', [100, -2]), b.ints('a', [2, -1]), b.ints('st', [2, 3])]);
      return b.node('Slice', [s, b.ints('s2', [-1]), b.ints('e2', [-100]), b.ints('a2', [1]), b.ints('st2', [-2])]);
      },
      13,
      false,
      1,
    ),
    model(
      'opset 21: ReduceMean axes input, Pad axes input, Clip',
      [3, 6, 6],
      (b, x) => {
        const p = b.node('Pad', [conv(b, x, 3, 4), b.ints('pads', [1, 2, 0, 1]), b.floats('v', [0], []), b.ints('axes', [2, 3])]);
        const c = b.node('Clip', [p, b.floats('lo', [0], []), b.floats('hi', [6], [])]);
        return b.node('ReduceMean', [c, b.ints('ax', [2, 3])], { keepdims: { i: 1 } });
      },
      21,
    ),
  ];
}
