/**
 * The tfjs LayersModel importer: small models built and saved with tfjs-layers, imported, and run on both
 * engines; logits checked against tfjs-layers' own `model.predict`, input gradients against `tf.grad`
 * through the tfjs-layers model.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { IntrospectError } from '../../services/errors';
import { createEngines, type Engines } from '../../services/engines';
import type { AttributionTarget, Engine, EngineModel } from '../../services/engines/engine';
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import { importTfjsLayers, loadTfjsLayersFromDir } from '../../services/graph/tfjs-import';
import { functionalFixture, nchwToNhwc, nhwcToNchw, saveToTempDir, sequentialFixture } from './fixture-model';
import { engineModel, relativeError, rowRelativeError, seededRandom } from './support';

const KINDS = ['onnxruntime', 'tfjs', 'tfjs-cpu'] as const;
type Kind = (typeof KINDS)[number];

interface Fixture {
  name: string;
  keras: tfl.LayersModel;
  model: EngineModel;
  shape: [number, number, number]; // C, H, W
  softmax: boolean;
}

function randomImages(n: number, size: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n * size }, () => rand(-1, 1));
}

function softmaxRows(logits: Float32Array, k: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / k; r++) {
    const row = logits.subarray(r * k, (r + 1) * k);
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    e.forEach((v, i) => (out[r * k + i] = v / s));
  }
  return out;
}

describe('engines: tfjs LayersModel importer', function () {
  let engines: Engines;
  /** The tfjs engine forced onto the plain JS cpu backend (the default one here is wasm). */
  let tfjsCpu: TfjsEngine;
  const fixtures: Fixture[] = [];
  const engine = (kind: Kind): Engine => (kind === 'tfjs-cpu' ? tfjsCpu : engines.engineFor(kind));

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1, intraOpThreads: 1 }, log: () => undefined });
    await engines.ready();
    tfjsCpu = new TfjsEngine({ backend: 'cpu', log: () => undefined });
    assert.equal((await tfjsCpu.ready()).backend, 'cpu');
    for (const [name, build, shape, softmax] of [
      ['sequential', sequentialFixture, [3, 14, 14], false],
      ['functional', functionalFixture, [2, 10, 10], true],
    ] as const) {
      const keras = build();
      const file = await saveToTempDir(keras);
      const graph = await loadTfjsLayersFromDir(file);
      fixtures.push({ name, keras, model: engineModel(graph, `tfjs-fixture-${name}`), shape: [...shape], softmax });
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  after(async function () {
    await engines?.close();
    await tfjsCpu?.close();
    for (const f of fixtures) f.keras.dispose();
  });

  it('imports the layer vocabulary: folded batch-norm, split activations, affine where BN does not follow a conv', function () {
    const seq = fixtures[0]!.model;
    const ops = seq.graph.nodes.map((n) => n.op.op);
    assert.deepEqual(ops, ['conv', 'leaky_relu', 'max_pool', 'pad', 'conv', 'relu', 'conv', 'clip', 'avg_pool', 'flatten', 'dense']);
    assert.equal(seq.convLayers.length, 3);
    assert.equal(seq.convLayers[0]!.batchNormFolded, true);
    assert.equal(seq.convLayers[0]!.activation, 'leaky_relu');
    assert.deepEqual(seq.graph.shapes.get(seq.graph.output), [5]);
    const fun = fixtures[1]!.model;
    const fops = fun.graph.nodes.map((n) => n.op.op);
    assert.ok(fops.includes('affine') && fops.includes('concat') && fops.includes('add'));
    assert.ok(!fops.includes('sigmoid') || fops.filter((o) => o === 'sigmoid').length === 1);
    assert.equal(fun.graph.nodes[fun.graph.nodes.length - 1]!.op.op, 'dense', 'the trailing softmax is removed');
  });

  for (const kind of KINDS) {
    it(`${kind}: logits equal tfjs-layers model.predict on both fixtures`, async function () {
      for (const f of fixtures) {
        const [c, h, w] = f.shape;
        const n = 3;
        const x = randomImages(n, c * h * w, 5);
        const got = await engine(kind).forward(f.model, x, n);
        const predicted = tf.tidy(() => f.keras.predict(tf.tensor4d(nchwToNhwc(x, n, c, h, w), [n, h, w, c])) as tf.Tensor);
        const want = (await predicted.data()) as Float32Array;
        predicted.dispose();
        const compare = f.softmax ? softmaxRows(got, f.model.classes) : got;
        assert.ok(relativeError(compare, want) < 1e-5, `${f.name}: relative error ${relativeError(compare, want)}`);
      }
    });
  }

  it('tfjs (wasm, cpu): logit input gradients equal tf.grad through the tfjs-layers model', async function () {
    const f = fixtures[0]!;
    const [c, h, w] = f.shape;
    const x = randomImages(1, c * h * w, 9);
    const classes = [0, 3];
    const got = await engines.tfjs.attribute(f.model, x, { kind: 'logit', classes }, 'gradient');
    const gotCpu = await tfjsCpu.attribute(f.model, x, { kind: 'logit', classes }, 'gradient');
    // The reference runs tfjs autodiff on the cpu backend (wasm lacks some gradient kernels).
    const active = tf.getBackend();
    await tf.setBackend('cpu');
    try {
      for (let i = 0; i < classes.length; i++) {
        const grad = tf.tidy(() => {
          const onehot = tf.oneHot(tf.tensor1d([classes[i]!], 'int32'), f.model.classes);
          const fn = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(f.keras.apply(t) as tf.Tensor, onehot));
          return tf.grad(fn)(tf.tensor4d(nchwToNhwc(x, 1, c, h, w), [1, h, w, c]));
        });
        const want = nhwcToNchw((await grad.data()) as Float32Array, 1, c, h, w);
        grad.dispose();
        for (const [name, all] of [['wasm', got], ['cpu', gotCpu]] as const) {
          const row = all.subarray(i * c * h * w, (i + 1) * c * h * w);
          assert.ok(relativeError(row, want) < 1e-4, `${name}, class ${classes[i]}: relative error ${relativeError(row, want)}`);
        }
      }
    } finally {
      await tf.setBackend(active);
    }
  });

  it('attributions agree between onnxruntime and tfjs (wasm, cpu) on both fixtures (leaky ReLU, ReLU6, sigmoid, tanh, depthwise, pools)', async function () {
    for (const f of fixtures) {
      const [c, h, w] = f.shape;
      const x = randomImages(1, c * h * w, 13);
      const targets: AttributionTarget[] = [
        ...f.model.convLayers.map((l): AttributionTarget => ({ kind: 'conv', layer: l.index, channels: [1, 0], objective: 'abs_sum' })),
        { kind: 'logit', classes: [2, 0] },
      ];
      for (const target of targets) {
        for (const rule of ['guided', 'gradient', 'deconv'] as const) {
          const a = await engines.onnxruntime.attribute(f.model, x, target, rule);
          for (const tfjsEngine of [engines.tfjs, tfjsCpu]) {
            const b = await tfjsEngine.attribute(f.model, x, target, rule);
            const what = `${f.name} ${tfjsEngine.status().backend} ${rule} ${JSON.stringify(target)}`;
            assert.ok(b.some((v) => v !== 0), `${what}: not all zeros`);
            const err = rowRelativeError(a, b, c * h * w);
            assert.ok(err < 1e-4, `${what}: relative error ${err}`);
          }
        }
      }
    }
  });

  it('rejects unsupported layers with the layer class and name', function () {
    const topology = {
      class_name: 'Sequential',
      config: {
        name: 's',
        layers: [
          { class_name: 'Conv2D', config: { name: 'c1', filters: 1, kernel_size: [1, 1], batch_input_shape: [null, 4, 4, 1], use_bias: false } },
          { class_name: 'SeparableConv2D', config: { name: 'sep_7', filters: 1, kernel_size: [1, 1] } },
        ],
      },
    };
    const json = { modelTopology: topology, weightsManifest: [{ paths: [], weights: [{ name: 'c1/kernel', shape: [1, 1, 1, 1], dtype: 'float32' }] }] };
    assert.throws(
      () => importTfjsLayers(json, new Float32Array([1]).buffer),
      (e: unknown) => e instanceof IntrospectError && e.kind === 'unimplemented' && /SeparableConv2D/.test(e.message) && /sep_7/.test(e.message),
    );
  });

  it('rejects weight data that does not match the manifest', function () {
    const topology = {
      class_name: 'Sequential',
      config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3] } }] },
    };
    const json = {
      modelTopology: topology,
      weightsManifest: [{ paths: [], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }, { name: 'd/bias', shape: [2], dtype: 'float32' }] }],
    };
    assert.throws(() => importTfjsLayers(json, new Float32Array(5).buffer), (e: unknown) => e instanceof IntrospectError && e.kind === 'invalid-argument');
    const ok = importTfjsLayers(json, new Float32Array(8).buffer);
    assert.deepEqual(ok.shapes.get(ok.output), [2]);
  });
});
