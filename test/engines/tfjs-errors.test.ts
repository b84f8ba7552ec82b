/**
 * The tfjs engine frees every tensor of a call that fails inside the graph (here an op its executor
 * refuses at run time): the IR forward (forward, activations) and the tensor-graph interpreter that runs
 * attribution graphs. The interpreter runs every op the attribution builder emits, the reversed slice too,
 * so its failure is made with a tensor graph of its own: a Conv fed a rank-3 value fails at run time, after
 * the nodes before it made their tensors.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { createEngines, type Engines } from '../../services/engines';
import type { EngineModel } from '../../services/engines/engine';
import type { IrGraph } from '../../services/graph/ir';
import { convLayers } from '../../services/graph/layers';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { TensorProgram } from '../../services/engines/tfjs/interpret';

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

  it('forward and activations fail with unimplemented and leave the tensor count where it was', async () => {
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
    await engines.tfjs.release(model.id);
  });
});

describe('engines: the tfjs tensor-graph interpreter frees the tensors of a failed run', function () {
  it('a node failing at run time leaves only the program\'s own tensors, run after run', function () {
    const b = new OnnxBuilder('failing');
    const x = b.input('x', [1, 2, 4, 4]);
    const r = b.node('Relu', [x]);
    const flat = b.node('Reshape', [r, b.ints('shape', [2, 4, 4])]);
    const w = b.floatInit('w', [3, 2, 3, 3], Float32Array.from({ length: 54 }, (_, i) => Math.sin(i)));
    b.node('Conv', [flat, w], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } }, 'y');
    b.output('y');
    const program = new TensorProgram(b.graph(16));
    const input = tf.tensor(Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)), [1, 2, 4, 4]);
    try {
      const held = tf.memory().numTensors;
      for (let k = 0; k < 2; k++) {
        assert.throws(() => program.run({ x: input }), (e: Error & { kind?: string }) => e.kind === 'unimplemented' && /Conv .*2-D/.test(e.message));
        assert.equal(tf.memory().numTensors, held, 'tensors left behind by a failed run');
      }
    } finally {
      input.dispose();
      program.dispose();
    }
  });
});
