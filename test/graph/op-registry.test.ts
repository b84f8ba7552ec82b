/**
 * The op registry (services/graph/ops): every IR op has a module with its mandatory facets, every name an
 * importer reads is claimed by exactly one module, and an op without a module is reported as unimplemented
 * naming the op and the node by every dispatcher.
 */
import { strict as assert } from 'node:assert';
import { IntrospectError } from '../../services/errors';
import type { IrGraph, OpName } from '../../services/graph/ir';
import { inferShape } from '../../services/graph/ir-shapes';
import { exportForward } from '../../services/graph/onnx-export';
import { kerasActivationNames, kerasLayerClasses, onnxOpTypes, opDef, opDefs } from '../../services/graph/ops';

/** Every IR op name: the type makes a missing or unknown name a compile error. */
const ALL_OPS: Record<OpName, true> = {
  conv: true,
  max_pool: true,
  avg_pool: true,
  global_avg_pool: true,
  global_max_pool: true,
  relu: true,
  leaky_relu: true,
  clip: true,
  sigmoid: true,
  tanh: true,
  hard_sigmoid: true,
  hard_swish: true,
  affine: true,
  dense: true,
  flatten: true,
  reshape: true,
  add: true,
  mul: true,
  concat: true,
  pad: true,
  slice: true,
  constant: true,
  identity: true,
};

/** Ops whose backward stays in the attribution builder (its device-specific conv and pooling forms). */
const BACKWARD_IN_BUILDER = new Set<string>(['conv', 'max_pool', 'avg_pool', 'global_avg_pool', 'global_max_pool']);

function expectUnimplemented(fn: () => unknown, ...words: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IntrospectError, `expected an IntrospectError, got ${String(e)}`);
    assert.equal(e.kind, 'unimplemented', e.message);
    for (const w of words) assert.ok(e.message.includes(w), `'${e.message}' should mention '${w}'`);
    return true;
  });
}

describe('graph: op registry', () => {
  it('every IR op has a module with its mandatory facets (shape, ONNX forward, tfjs forward, backward)', () => {
    const names = Object.keys(ALL_OPS);
    assert.deepEqual(opDefs().map((d) => d.op).sort(), [...names].sort(), 'registered modules = IR ops');
    for (const name of names) {
      const d = opDef(name, 'test');
      assert.equal(d.op, name);
      assert.equal(typeof d.summary, 'string');
      assert.equal(typeof d.shape, 'function', `${name}: shape`);
      assert.equal(typeof d.emitOnnx, 'function', `${name}: ONNX forward`);
      assert.equal(typeof d.tfjs, 'function', `${name}: tfjs forward`);
      if (!BACKWARD_IN_BUILDER.has(name)) assert.equal(typeof d.backward, 'function', `${name}: backward`);
      else assert.equal(d.backward, undefined, `${name}: its backward lives in the attribution builder, not in two places`);
    }
  });

  it('the importers read the ONNX op types, Keras layers and activations they read before the registry, each from one module', () => {
    // Generic machinery in the ONNX importer (aliases, folding, shape arithmetic) reads the rest:
    // Identity, Dropout, Cast, BatchNormalization, Add, Sub, Mul, Div, Shape, Constant.
    const onnx = onnxOpTypes();
    assert.equal(new Set(onnx).size, onnx.length);
    for (const t of [
      'Conv', 'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool',
      'ReduceMean', 'ReduceMax', 'Gemm', 'MatMul', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Transpose', 'Sum', 'Concat',
      'Pad', 'Slice',
    ]) {
      assert.ok(onnx.includes(t), `ONNX ${t} has a reader`);
    }
    for (const t of ['Conv2D', 'DepthwiseConv2D', 'Dense', 'ReLU', 'LeakyReLU', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'Flatten', 'ZeroPadding2D', 'Add', 'Concatenate', 'Reshape']) {
      assert.ok(kerasLayerClasses().includes(t), `Keras ${t} has a reader`);
    }
    for (const a of ['relu', 'relu6', 'sigmoid', 'tanh']) assert.ok(kerasActivationNames().includes(a), `Keras activation ${a}`);
  });

  it('an op without a module is unimplemented, naming the op and the node (shape, ONNX export)', () => {
    const g: IrGraph = {
      input: { name: 'x', shape: [2, 3, 3] },
      output: 'y',
      nodes: [{ name: 'mystery_node', inputs: ['x'], output: 'y', op: { op: 'gelu_tanh' } as never }],
      weights: new Map(),
      shapes: new Map([
        ['x', [2, 3, 3]],
        ['y', [2, 3, 3]],
      ]),
    };
    expectUnimplemented(() => inferShape(g.nodes[0]!.op, [[2, 3, 3]], g.weights, "node 'mystery_node'"), 'gelu_tanh', 'mystery_node');
    expectUnimplemented(() => exportForward(g), 'gelu_tanh', 'mystery_node');
  });
});
