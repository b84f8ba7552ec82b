import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { importOnnx } from '../../services/graph/onnx-import';
import { convLayers, denseLayers, opNames, parameterCount } from '../../services/graph/layers';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { encodeModel } from '../../services/graph/onnx-codec';
import { IntrospectError } from '../../services/errors';
import { needShared, sharedPath } from '../support/shared';
import { randomArray } from './support';

function expectError(fn: () => unknown, kind: string, ...words: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof IntrospectError, `expected an IntrospectError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    for (const w of words) assert.ok(e.message.includes(w), `'${e.message}' should mention '${w}'`);
    return true;
  });
}

/** A one-conv model; `extra` adds nodes after it. */
function tinyModel(extra?: (b: OnnxBuilder, y: string) => string): OnnxBuilder {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 2, 4, 4]);
  let y = b.node('Conv', [x, b.floatInit('w', [3, 2, 1, 1], randomArray(6, 1))]);
  if (extra) y = extra(b, y);
  b.node('Identity', [y], {}, 'y');
  b.output('y');
  return b;
}

describe('graph: ONNX import', () => {
  describe('the shared models', () => {
    it('vgg11_cifar10: 8 conv layers with the thesis widths, 2 dense layers, 9,488,266 parameters (SPEC §5)', function () {
      needShared(this, 'models/vgg11_cifar10.onnx');
      const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
      assert.deepEqual(g.input.shape, [3, 32, 32]);
      const convs = convLayers(g);
      assert.deepEqual(
        convs.map((c) => c.channels),
        [64, 128, 256, 256, 512, 512, 512, 512],
      );
      assert.deepEqual(
        convs.map((c) => c.shape[1]),
        [32, 16, 8, 8, 4, 4, 2, 2],
      );
      assert.ok(convs.every((c) => c.activation === 'relu' && !c.batchNormFolded));
      assert.deepEqual(
        denseLayers(g).map((d) => d.units),
        [512, 10],
      );
      assert.equal(parameterCount(g), 9488266);
      assert.deepEqual(g.shapes.get(g.output), [10]);
      assert.deepEqual(opNames(g).sort(), ['conv', 'dense', 'flatten', 'global_avg_pool', 'max_pool', 'relu']);
    });

    it('resnet20_cifar10: shortcut shape arithmetic folds to strided slices and channel pads', function () {
      needShared(this, 'models/resnet20_cifar10.onnx');
      const g = importOnnx(fs.readFileSync(sharedPath('models/resnet20_cifar10.onnx')));
      const convs = convLayers(g);
      assert.equal(convs.length, 19);
      assert.deepEqual(
        [convs[0].channels, convs[7].channels, convs[13].channels],
        [16, 32, 64],
      );
      // conv2 of every block feeds the residual add, not an activation
      assert.deepEqual(
        convs.map((c) => c.activation),
        ['relu', ...Array.from({ length: 9 }, () => ['relu', ''])].flat(),
      );
      const pads = g.nodes.filter((n) => n.op.op === 'pad').map((n) => n.op);
      assert.deepEqual(pads, [
        { op: 'pad', pads: [8, 0, 0, 8, 0, 0], value: 0 },
        { op: 'pad', pads: [16, 0, 0, 16, 0, 0], value: 0 },
      ]);
      const slices = g.nodes.filter((n) => n.op.op === 'slice');
      assert.equal(slices.length, 4);
      assert.ok(slices.every((n) => n.op.op === 'slice' && n.op.steps[0] === 2));
      // no shape arithmetic survives
      assert.deepEqual(opNames(g).sort(), ['add', 'avg_pool', 'conv', 'dense', 'flatten', 'pad', 'relu', 'slice']);
    });

    it('vgg11_mnist: a one-channel input', function () {
      needShared(this, 'models/vgg11_mnist.onnx');
      const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_mnist.onnx')));
      assert.deepEqual(g.input.shape, [1, 32, 32]);
      assert.equal(convLayers(g).length, 8);
      assert.equal(parameterCount(g), 9488266 - 2 * 9 * 64);
    });
  });

  describe('errors', () => {
    it('rejects bytes that are not an ONNX model as invalid-argument', () => {
      expectError(() => importOnnx(new Uint8Array(0)), 'invalid-argument', 'empty');
      expectError(() => importOnnx(Buffer.from('this is a text file, not a model')), 'invalid-argument', 'ONNX');
      expectError(() => importOnnx(Uint8Array.from(randomArray(4096, 9), (v) => (v + 1) * 127)), 'invalid-argument');
      const good = tinyModel().encode();
      expectError(() => importOnnx(good.subarray(0, good.length - 7)), 'invalid-argument');
    });

    it('rejects weights stored in external data files as invalid-argument', () => {
      const m = tinyModel().model();
      const graph = m.graph;
      assert.ok(graph);
      graph.initializer[0].dataLocation = 1;
      graph.initializer[0].rawData = Buffer.alloc(0);
      expectError(() => importOnnx(encodeModel(m)), 'invalid-argument', 'external', graph.initializer[0].name);
    });

    it('names the op type and node of an unsupported op (unimplemented)', () => {
      const b = tinyModel((bb, y) => bb.node('Erf', [y], {}, undefined, 'my_erf_node'));
      expectError(() => importOnnx(b.encode()), 'unimplemented', 'Erf', 'my_erf_node');
    });

    it('a softmax that is not the last op is unimplemented', () => {
      const b = tinyModel((bb, y) => bb.node('Relu', [bb.node('Softmax', [y], {}, undefined, 'mid_softmax')]));
      expectError(() => importOnnx(b.encode()), 'unimplemented', 'Softmax', 'mid_softmax');
    });

    it('rejects models with two inputs, or with an input that is not [N,C,H,W]', () => {
      const b = new OnnxBuilder();
      const x = b.input('x', ['N', 2, 4, 4]);
      const z = b.input('z', ['N', 2, 4, 4]);
      b.node('Add', [x, z], {}, 'y');
      b.output('y');
      expectError(() => importOnnx(b.encode()), 'invalid-argument', 'exactly one input');
      const v = new OnnxBuilder();
      v.node('Relu', [v.input('x', ['N', 16])], {}, 'y');
      v.output('y');
      expectError(() => importOnnx(v.encode()), 'invalid-argument', '[N, C, H, W]');
    });

    it('a reshape that mixes the batch dimension is unimplemented', () => {
      const b = tinyModel((bb, y) => bb.node('Reshape', [y, bb.ints('s', [-1, 4])], {}, undefined, 'mix'));
      expectError(() => importOnnx(b.encode()), 'unimplemented', 'mix');
    });

    it('opsets before 9 are unimplemented', () => {
      expectError(() => importOnnx(tinyModel().encode(8)), 'unimplemented', 'opset 8');
    });
  });

  it('drops a trailing softmax and keeps the logits as the output', () => {
    const b = tinyModel((bb, y) => bb.node('Softmax', [bb.node('Flatten', [y])], { axis: { i: 1 } }));
    const g = importOnnx(b.encode());
    assert.equal(g.nodes[g.nodes.length - 1].op.op, 'flatten');
    assert.equal(g.output, g.nodes[g.nodes.length - 1].output);
    assert.deepEqual(g.shapes.get(g.output), [48]);
  });
});
