/**
 * The tfjs engine frees every tensor of a call that fails inside the graph (here an op its executor
 * refuses at run time): forward and activations (the IR executor, which refuses reversed slices), and the
 * tensor-graph interpreter attributions run on (which runs reversed slices, so the attribution of the same
 * model succeeds and equals onnxruntime's; its run-time failure is made with an op form it refuses).
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { createEngines, type Engines } from '../../services/engines';
import type { EngineModel } from '../../services/engines/engine';
import type { IrGraph } from '../../services/graph/ir';
import { convLayers } from '../../services/graph/layers';
import { TensorProgram } from '../../services/engines/tfjs/interpret';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { maxAbs, maxAbsDiff } from '../graph/support';

/** conv → relu → a reversed slice (not run by the tfjs engine) → flatten → dense. */
function failingModel(): EngineModel {
  const g: IrGraph = {
    input: { name: 'x', shape: [2, 4, 4] },
    output: 'logits',
    nodes: [
      { name: 'conv', inputs: ['x'], output: 'z', op: { op: 'conv', weight: 'w', bias: 'b', kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 } },
      { name: 'relu', inputs: ['z'], output: 'a', op: { op: 'relu' } },
      { name: 'flip', inputs: ['a'], output: 's', op: { op: 'slice', starts: [3], ends: [-1], axes: [2], steps: [-1] } },
      { name: 'flat', inputs: ['s'], output: 'f', op: { op: 'flatten' } },
      { name: 'fc', inputs: ['f'], output: 'logits', op: { op: 'dense', weight: 'fw' } },
    ],
    weights: new Map([
      ['w', { shape: [3, 2, 3, 3], data: Float32Array.from({ length: 54 }, (_, i) => Math.sin(i)) }],
      ['b', { shape: [3], data: new Float32Array(3) }],
      ['fw', { shape: [5, 48], data: Float32Array.from({ length: 240 }, (_, i) => Math.cos(i)) }],
    ]),
    shapes: new Map([
      ['x', [2, 4, 4]],
      ['z', [3, 4, 4]],
      ['a', [3, 4, 4]],
      ['s', [3, 4, 4]],
      ['f', [48]],
      ['logits', [5]],
    ]),
  };
  return { id: 'failing-slice', graph: g, convLayers: convLayers(g), classes: 5 };
}

describe('engines: tfjs frees the tensors of a failed call', function () {
  this.timeout(60_000);
  let engines: Engines;

  before(async () => {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
  });
  after(async () => {
    await engines?.close();
  });

  it('forward and activations fail with unimplemented and leave the tensor count where it was; attribute runs', async () => {
    const model = failingModel();
    const x = Float32Array.from({ length: 3 * 32 }, (_, i) => Math.sin(i * 0.3));
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['forward', () => engines.tfjs.forward(model, x, 3)],
      ['activations', () => engines.tfjs.activations(model, x, 3, [0])],
    ];
    // The first failure loads the model (its weights stay until release); later failures must add nothing.
    await assert.rejects(calls[0]![1]());
    const loaded = tf.memory().numTensors;
    for (const [what, call] of calls) {
      for (let k = 0; k < 2; k++) {
        await assert.rejects(call(), (e: Error & { kind?: string }) => e.kind === 'unimplemented' && /slice/.test(e.message), what);
        assert.equal(tf.memory().numTensors, loaded, `${what}: tensors left behind by a failed call`);
      }
    }
    const target = { kind: 'logit' as const, classes: [0, 1, 2] };
    const a = await engines.tfjs.attribute(model, x.subarray(0, 32), target, 'guided');
    const b = await engines.onnxruntime.attribute(model, x.subarray(0, 32), target, 'guided');
    assert.ok(maxAbs(b) > 0);
    assert.ok(maxAbsDiff(a, b) <= 1e-5 * maxAbs(b));
    await engines.tfjs.release(model.id);
  });

  it('the interpreter frees every intermediate value of a run that fails part-way', async () => {
    await engines.tfjs.ready();
    const bld = new OnnxBuilder('fails');
    const r = bld.node('Relu', [bld.node('Mul', [bld.input('x', [1, 2, 4, 4]), bld.floats('k', [2], [])])]);
    // linear Resize is not among the forms the interpreter runs: refused when the run reaches it
    bld.node('Resize', [r, '', bld.floats('scales', [1, 1, 2, 2])], { mode: { s: 'linear' } }, 'y');
    bld.output('y');
    const program = new TensorProgram(bld.graph(16));
    const input = tf.ones([1, 2, 4, 4]);
    try {
      const before = tf.memory().numTensors;
      for (let k = 0; k < 2; k++) {
        assert.throws(() => program.run({ x: input }), (e: Error & { kind?: string }) => e.kind === 'unimplemented' && /Resize/.test(e.message));
        assert.equal(tf.memory().numTensors, before, 'tensors left behind by a failed run');
      }
    } finally {
      program.dispose();
      input.dispose();
    }
  });
});
