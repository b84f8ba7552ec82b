/**
 * Keras' hard activations through the tfjs LayersModel importer, read by the op modules
 * (services/graph/ops/hard-sigmoid.ts, hard-swish.ts): `hard_sigmoid` is clip(0.2·x + 0.5, 0, 1) in Keras 2
 * and tfjs-layers but relu6(x + 3) / 6 in Keras 3; `hard_silu` / `hard_swish` (Keras 3) is x · relu6(x + 3) / 6.
 * A tfjs-layers model Conv2D → Activation → GlobalAveragePooling2D → Dense is saved, imported and run on
 * both engines: against tfjs-layers' own predict where tfjs-layers has the activation, otherwise against
 * tfjs-layers' conv output carried through the activation, pooling and dense in float64.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { createEngines, type Engines } from '../../services/engines';
import { importTfjsLayers } from '../../services/graph/tfjs-import';
import { nchwToNhwc, randomise, saveToTempDir } from './fixture-model';
import { engineModel, relativeError, seededRandom } from './support';

const [H, W, C] = [8, 8, 3];
const F = 4;
const K = 3;
const N = 2;

function build(): tfl.LayersModel {
  const input = tfl.input({ shape: [H, W, C] });
  const z = tfl.layers.conv2d({ filters: F, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input) as tfl.SymbolicTensor;
  const a = tfl.layers.activation({ activation: 'hardSigmoid', name: 'act' }).apply(z) as tfl.SymbolicTensor;
  const p = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(a) as tfl.SymbolicTensor;
  const y = tfl.layers.dense({ units: K, name: 'logits' }).apply(p) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: y });
  randomise(m, 5);
  return m;
}

describe('engines: Keras hard_sigmoid / hard_silu through the tfjs importer', function () {
  let engines: Engines;
  let keras: tfl.LayersModel;
  let json: Record<string, unknown>;
  let weights: Uint8Array;
  const r = seededRandom(3);
  const x = Float32Array.from({ length: N * C * H * W }, () => r(-4, 4)); // NCHW; wide enough to saturate
  const xNhwc = nchwToNhwc(x, N, C, H, W);

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1, intraOpThreads: 1 }, log: () => undefined });
    await engines.ready();
    keras = build();
    const file = await saveToTempDir(keras);
    json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    weights = new Uint8Array(fs.readFileSync(path.join(path.dirname(file), 'weights.bin')));
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  after(async function () {
    await engines?.close();
    keras?.dispose();
  });

  /** model.json with the Activation layer's activation renamed and the topology's keras_version set. */
  function variant(activation: string | undefined, kerasVersion: string | undefined): Record<string, unknown> {
    const j = JSON.parse(JSON.stringify(json)) as { modelTopology: Record<string, unknown> };
    const layers = (j.modelTopology.config as { layers: Array<{ name?: string; config: Record<string, unknown> }> }).layers;
    const act = layers.find((l) => l.config.name === 'act' || l.name === 'act');
    assert.ok(act, 'the saved model has the Activation layer');
    if (activation !== undefined) act.config.activation = activation;
    if (kerasVersion !== undefined) j.modelTopology.keras_version = kerasVersion;
    return j as unknown as Record<string, unknown>;
  }

  /** Logits in float64 from tfjs-layers' conv output (NHWC) through `f`, the global average and the dense layer. */
  async function reference(f: (z: number) => number): Promise<Float64Array> {
    const convOut = tfl.model({ inputs: keras.inputs, outputs: keras.getLayer('conv').output as tfl.SymbolicTensor });
    const zt = convOut.predict(tf.tensor4d(xNhwc, [N, H, W, C])) as tf.Tensor;
    const z = (await zt.data()) as Float32Array;
    zt.dispose();
    const [kernel, bias] = keras.getLayer('logits').getWeights();
    const wd = (await kernel!.data()) as Float32Array; // [F, K]
    const bd = (await bias!.data()) as Float32Array;
    const out = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      const mean = new Float64Array(F);
      for (let p = 0; p < H * W; p++) for (let c = 0; c < F; c++) mean[c]! += f(z[(n * H * W + p) * F + c]!) / (H * W);
      for (let k = 0; k < K; k++) {
        let s = bd[k]!;
        for (let c = 0; c < F; c++) s += wd[c * K + k]! * mean[c]!;
        out[n * K + k] = s;
      }
    }
    return out;
  }

  async function expectEngines(modelJson: Record<string, unknown>, irOp: string, want: ArrayLike<number>): Promise<{ alpha?: number }> {
    const graph = importTfjsLayers(modelJson, weights);
    const act = graph.nodes.find((n) => n.op.op === irOp);
    assert.ok(act, `the graph has a ${irOp} node: ${graph.nodes.map((n) => n.op.op)}`);
    const model = engineModel(graph, `keras-${irOp}-${Math.random()}`);
    assert.equal(model.convLayers[0]!.activation, irOp);
    for (const kind of ['onnxruntime', 'tfjs'] as const) {
      const got = await engines.engineFor(kind).forward(model, x, N);
      assert.ok(relativeError(got, want) < 1e-5, `${kind}: relative error ${relativeError(got, want)}`);
      console.log(`      ${kind}: relative error ${relativeError(got, want).toExponential(2)}`);
    }
    return act.op as { alpha?: number };
  }

  it('tfjs-layers (Keras 2 definition, slope 0.2): logits on both engines equal tfjs-layers predict', async function () {
    const predicted = keras.predict(tf.tensor4d(xNhwc, [N, H, W, C])) as tf.Tensor;
    const want = (await predicted.data()) as Float32Array;
    predicted.dispose();
    // the same numbers from the float64 path, so that path is checked against tfjs-layers too
    const hs2 = (z: number): number => Math.max(0, Math.min(1, 0.2 * z + 0.5));
    assert.ok(relativeError(await reference(hs2), want) < 1e-5, 'float64 reference vs tfjs-layers');
    const op = await expectEngines(json, 'hard_sigmoid', want);
    assert.ok(Math.abs(op.alpha! - 0.2) < 1e-12);
    // tfjs-layers writes keras_version 'tfjs-layers 4.x'; a model written by Keras 2 itself reads the same
    await expectEngines(variant('hard_sigmoid', '2.15.0'), 'hard_sigmoid', want);
  });

  it('Keras 3 hard_sigmoid (relu6(x + 3) / 6): logits on both engines equal the float64 reference', async function () {
    const want = await reference((z) => Math.max(0, Math.min(6, z + 3)) / 6);
    const op = await expectEngines(variant('hard_sigmoid', '3.3.3'), 'hard_sigmoid', want);
    assert.ok(Math.abs(op.alpha! - 1 / 6) < 1e-12);
  });

  for (const name of ['hard_silu', 'hard_swish']) {
    it(`Keras 3 ${name} (x · relu6(x + 3) / 6): logits on both engines equal the float64 reference`, async function () {
      const want = await reference((z) => (z * Math.max(0, Math.min(6, z + 3))) / 6);
      await expectEngines(variant(name, '3.3.3'), 'hard_swish', want);
    });
  }
});
