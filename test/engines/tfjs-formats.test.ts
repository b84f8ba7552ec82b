/**
 * The tfjs model files people have: tensorflowjs_converter's layout of a Keras model (`model_config`
 * wrapper, sharded weights), nested Sequential models, Keras 3 configs, uint8 / uint16 / float16 quantized
 * weights, and the refusal of graph models and weights-only manifests. The independent path is tfjs-layers'
 * own loader and `predict` on the same files (it unwraps `model_config` and dequantizes by itself); the
 * dequantized values are also checked bit for bit against tfjs-core's `decodeWeights`.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { createEngines, type Engines } from '../../services/engines';
import type { EngineModel } from '../../services/engines/engine';
import { IntrospectError } from '../../services/errors';
import { importTfjsLayers, loadTfjsLayersFromDir } from '../../services/graph/tfjs-import';
import { decodeTfjsWeights } from '../../services/graph/tfjs-weights';
import { nchwToNhwc, nestedFixture, transferFixture } from './fixture-model';
import { engineModel, relativeError, seededRandom } from './support';
import { artifactsOf, tfjsLayersLoad, writeConverterLayout, type Artifacts, type Quantization } from './tfjs-artifacts';

const ENGINES = ['onnxruntime', 'tfjs'] as const;
const NESTED_SHAPE = [3, 12, 12] as const; // C, H, W

function randomImages(n: number, size: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rand = seededRandom(seed);
  return Float32Array.from({ length: n * size }, () => rand(lo, hi));
}

/** tfjs-layers' predict of NCHW images. */
async function predict(m: tfl.LayersModel, x: Float32Array, n: number, [c, h, w]: readonly number[]): Promise<Float32Array> {
  const y = tf.tidy(() => m.predict(tf.tensor4d(nchwToNhwc(x, n, c!, h!, w!), [n, h!, w!, c!])) as tf.Tensor);
  const data = (await y.data()) as Float32Array;
  y.dispose();
  return data;
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

/** The model.json and concatenated shards of a converter-layout folder. */
function readFolder(file: string): { json: { weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }> }; data: Uint8Array } {
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  const dir = path.dirname(file);
  const data = Buffer.concat(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
  return { json, data: new Uint8Array(data) };
}

const isError = (kind: string, ...patterns: RegExp[]) => (e: unknown): boolean => {
  assert.ok(e instanceof IntrospectError, `not an IntrospectError: ${String(e)}`);
  assert.equal(e.kind, kind, e.message);
  for (const p of patterns) assert.match(e.message, p);
  return true;
};

describe('engines: tfjs model files (converter layout, nested models, Keras 3, quantized weights)', function () {
  this.timeout(300_000);
  let engines: Engines;
  let tmp: string;
  let keras: tfl.LayersModel;
  let artifacts: Artifacts;
  let outputShapes: Map<string, number[]>;

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1, intraOpThreads: 1 }, log: () => undefined });
    await engines.ready();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'introspect-tfjs-formats-'));
    keras = nestedFixture();
    artifacts = await artifactsOf(keras);
    outputShapes = new Map(keras.layers.map((l) => [l.name, (l.outputShape as number[]).slice(1)]));
  });

  after(async function () {
    await engines?.close();
    keras?.dispose();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  /**
   * Imports `file`, runs it on both engines and compares with tfjs-layers' predict of `reference` (the
   * probabilities of the fixture's final softmax, which the service drops: its logits are softmaxed here).
   */
  async function checkAgainstTfjsLayers(file: string, reference: string, what: string, shape: readonly number[] = NESTED_SHAPE): Promise<EngineModel> {
    const model = engineModel(await loadTfjsLayersFromDir(file), `tfjs-formats-${what}`);
    const ref = await tfjsLayersLoad(reference);
    try {
      const n = 3;
      const x = randomImages(n, shape.reduce((a, b) => a * b, 1), 7);
      const want = await predict(ref, x, n, shape);
      for (const kind of ENGINES) {
        const got = softmaxRows(await engines.engineFor(kind).forward(model, x, n), model.classes);
        const err = relativeError(got, want);
        assert.ok(err < 1e-5, `${what}, ${kind}: relative error ${err}`);
      }
    } finally {
      ref.dispose();
    }
    return model;
  }

  it('converter layout (model_config wrapper, sharded) with nested Sequential models equals tfjs-layers predict on both engines', async () => {
    const file = writeConverterLayout(path.join(tmp, 'keras2'), artifacts, { shardBytes: 1500 });
    assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).weightsManifest[0].paths.length, Math.ceil(artifacts.data.byteLength / 1500));
    const model = await checkAgainstTfjsLayers(file, file, 'keras2');
    const ops = model.graph.nodes.map((n) => n.op.op);
    // the trailing softmax, inside the nested classifier, is dropped as the model's last layer
    assert.deepEqual(ops, ['conv', 'relu', 'conv', 'relu', 'conv', 'add', 'max_pool', 'conv', 'leaky_relu', 'flatten', 'dense', 'relu', 'dense']);
    // the nested model's BatchNormalization folds into its conv; so does the one after `head`
    assert.deepEqual(model.convLayers.map((l) => [l.node, l.batchNormFolded]), [
      ['stem', false],
      ['block_conv', true],
      ['block_dw', false],
      ['head', true],
    ]);
  });

  it('a Sequential whose first layer is a functional model (transfer learning) equals tfjs-layers predict on both engines', async () => {
    const transfer = transferFixture();
    try {
      const file = writeConverterLayout(path.join(tmp, 'transfer'), await artifactsOf(transfer));
      const model = await checkAgainstTfjsLayers(file, file, 'transfer', [2, 8, 8]);
      assert.deepEqual(model.graph.input.shape, [2, 8, 8]);
      assert.deepEqual(model.graph.nodes.map((n) => n.op.op), ['conv', 'relu', 'conv', 'add', 'relu', 'global_avg_pool', 'flatten', 'dense']);
    } finally {
      transfer.dispose();
    }
  });

  for (const saved of ['h5', 'keras'] as const) {
    it(`Keras 3 configs saved as .${saved} (__keras_tensor__ inbound nodes, batch_shape, ${saved === 'h5' ? 'weights by variable path' : 'weights by position, vars/<i>'}) import to the same graph and logits`, async () => {
      const k2 = writeConverterLayout(path.join(tmp, `keras2-ref-${saved}`), artifacts);
      const k3 = writeConverterLayout(path.join(tmp, `keras3-${saved}`), artifacts, { keras3: { outputShapes, saved } });
      const json = JSON.parse(fs.readFileSync(k3, 'utf8'));
      const config = json.modelTopology.model_config;
      assert.equal(config.class_name, 'Functional');
      assert.equal(config.config.layers[2].class_name, 'Sequential');
      assert.equal(config.config.layers[3].inbound_nodes[0].args[0][0].class_name, '__keras_tensor__');
      assert.equal('module' in config, saved === 'h5');
      const names = json.weightsManifest[0].weights.map((w: { name: string }) => w.name);
      const expected = saved === 'h5' ? ['nested_fixture/block/block_bn/moving_variance', 'nested_fixture/block/block_dw/kernel'] : ['layers/block/layers/block_bn/vars/3', 'layers/block/layers/block_dw/vars/0'];
      for (const e of expected) assert.ok(names.includes(e), `${e} not among ${names.join(' ')}`);
      // tfjs-layers reads Keras 2 configs only: the reference is its predict of the Keras 2 files (same weights).
      const model3 = await checkAgainstTfjsLayers(k3, k2, `keras3-${saved}`);
      const model2 = engineModel(await loadTfjsLayersFromDir(k2), 'tfjs-formats-keras2-ref');
      assert.deepEqual(model3.graph.nodes.map((n) => n.op), model2.graph.nodes.map((n) => n.op));
      assert.deepEqual([...model3.graph.weights.values()], [...model2.graph.weights.values()]);
    });
  }

  for (const q of ['uint8', 'uint16', 'float16'] as const satisfies readonly Quantization[]) {
    it(`${q}-quantized weights: dequantized bit for bit as tfjs-core does, logits equal tfjs-layers predict of the same files`, async () => {
      const file = writeConverterLayout(path.join(tmp, q), artifacts, { quantize: q, shardBytes: 700 });
      const { json, data } = readFolder(file);
      const specs = json.weightsManifest.flatMap((g) => g.weights);
      assert.ok(specs.every((s) => s.quantization?.dtype === q));
      const ours = decodeTfjsWeights(specs, data);
      const theirs = tf.io.decodeWeights(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer, specs);
      const originals = new Float32Array(artifacts.data.buffer.slice(0));
      let at = 0;
      let changed = 0;
      for (const spec of specs) {
        const mine = ours.get(spec.name)!;
        const ref = theirs[spec.name]!.dataSync() as Float32Array;
        assert.deepEqual(mine.shape, spec.shape);
        assert.deepEqual(new Uint32Array(mine.data.buffer), new Uint32Array(ref.buffer, ref.byteOffset, ref.length), `${spec.name}: values differ from tfjs-core's decodeWeights`);
        for (let i = 0; i < mine.data.length; i++) if (mine.data[i] !== originals[at + i]) changed++;
        at += mine.data.length;
      }
      Object.values(theirs).forEach((t) => t.dispose());
      assert.ok(changed > at / 4, `${q}: only ${changed} of ${at} values changed by quantization; the files are not quantized`);
      await checkAgainstTfjsLayers(file, file, q);
    });
  }

  it('float16: every one of the 65 536 half bit patterns decodes as tfjs-core decodes it', () => {
    const bits = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(bits.buffer);
    const specs: tf.io.WeightsManifestEntry[] = [{ name: 'all/halves', shape: [65536], dtype: 'float32', quantization: { dtype: 'float16' } }];
    const ours = decodeTfjsWeights(specs, bytes).get('all/halves')!.data;
    const t = tf.io.decodeWeights(bytes.buffer.slice(0), specs)['all/halves']!;
    const theirs = t.dataSync() as Float32Array;
    t.dispose();
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(theirs[i]!)) assert.ok(Number.isNaN(ours[i]!), `half 0x${i.toString(16)}: NaN expected`);
      else assert.ok(Object.is(ours[i], theirs[i]), `half 0x${i.toString(16)}: ${ours[i]} vs ${theirs[i]}`);
    }
    assert.equal(ours[0x3c00], 1);
    assert.equal(ours[0x0001], 2 ** -24);
    assert.equal(ours[0x7bff], 65504);
  });

  it('weight manifests: optimizer weights skipped; bad quantization metadata and odd dtypes refused naming the weight', () => {
    const w = (extra: Record<string, unknown>): unknown[] => [{ name: 'd/kernel', shape: [2], dtype: 'float32', ...extra }];
    const u8 = new Uint8Array([0, 255]);
    const ok = decodeTfjsWeights([...w({ quantization: { dtype: 'uint8', min: -1, scale: 0.5 } }), { name: 'iter', shape: [], dtype: 'int32', group: 'optimizer' }], new Uint8Array([0, 255, 7, 0, 0, 0]));
    assert.deepEqual([...ok.keys()], ['d/kernel']);
    assert.deepEqual([...ok.get('d/kernel')!.data], [-1, 126.5]);
    assert.throws(() => decodeTfjsWeights(w({ quantization: { dtype: 'uint8', scale: 0.5 } }), u8), isError('invalid-argument', /d\/kernel/, /min and scale/));
    assert.throws(() => decodeTfjsWeights(w({ quantization: { dtype: 'uint8', offset: 3, scale: 0.5 } }), u8), isError('invalid-argument', /d\/kernel/, /min and scale/));
    assert.throws(() => decodeTfjsWeights(w({ quantization: { dtype: 'int4', min: 0, scale: 1 } }), u8), isError('unimplemented', /d\/kernel/, /int4/));
    assert.throws(() => decodeTfjsWeights(w({ dtype: 'int32', quantization: { dtype: 'float16' } }), new Uint8Array(4)), isError('invalid-argument', /float16 quantization/));
    assert.throws(() => decodeTfjsWeights(w({ dtype: 'int32' }), new Uint8Array(8)), isError('unimplemented', /d\/kernel has dtype int32/));
    assert.throws(() => decodeTfjsWeights(w({ quantization: { dtype: 'uint16', min: 0, scale: 1 } }), u8), isError('invalid-argument', /too short/));
    assert.throws(() => decodeTfjsWeights(w({ quantization: { dtype: 'uint8', min: 0, scale: 1 } }), new Uint8Array(3)), isError('invalid-argument', /3 bytes but the manifest describes 2/));
  });

  it('graph models and weights-only manifests are refused saying what the file is and what to do', () => {
    const graphModel = {
      format: 'graph-model',
      generatedBy: '2.15.0',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: { node: [{ name: 'x', op: 'Placeholder', attr: {} }, { name: 'Identity', op: 'Identity', input: ['x'] }], library: {}, versions: { producer: 1645 } },
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [] }],
    };
    const graph = isError('unimplemented', /tfjs graph model/, /GraphDef of 2 nodes/, /--output_format tfjs_layers_model/, /ONNX/);
    assert.throws(() => importTfjsLayers(graphModel, new Uint8Array(0)), graph);
    const { format: _f, ...unlabelled } = graphModel; // a GraphDef topology is recognised without the format field
    assert.throws(() => importTfjsLayers(unlabelled, new Uint8Array(0)), graph);
    const manifest = [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'd/kernel', shape: [2], dtype: 'float32' }] }];
    assert.throws(() => importTfjsLayers(manifest, new Uint8Array(8)), isError('failed-precondition', /weights manifest/, /architecture/, /model\.json/));
    assert.throws(() => importTfjsLayers({ weightsManifest: manifest }, new Uint8Array(8)), isError('failed-precondition', /no modelTopology/));
    assert.throws(() => importTfjsLayers({ modelTopology: { foo: 1 }, weightsManifest: manifest }, new Uint8Array(8)), isError('invalid-argument', /neither a Keras model config/, /keys foo/));
  });

  it('nsfwjs MobileNetV2 (Keras 2.2.4, converter layout, uint8 weights) equals tfjs-layers predict on both engines', async function () {
    const file = path.join(process.cwd(), 'test', 'fixtures', 'tfjs', 'nsfwjs_mobilenet_v2', 'model.json');
    const model = engineModel(await loadTfjsLayersFromDir(file), 'tfjs-formats-nsfwjs');
    assert.equal(model.classes, 5);
    assert.ok(model.convLayers.length >= 50, `${model.convLayers.length} conv layers`);
    const ref = await tfjsLayersLoad(file);
    try {
      const n = 2;
      const shape = [3, 224, 224] as const;
      const x = randomImages(n, 3 * 224 * 224, 17, 0, 1);
      const want = await predict(ref, x, n, shape); // probabilities (the model ends in softmax; the service drops it)
      for (const kind of ENGINES) {
        const got = softmaxRows(await engines.engineFor(kind).forward(model, x, n), 5);
        const err = relativeError(got, want);
        assert.ok(err < 1e-5, `nsfwjs, ${kind}: relative error ${err}`);
      }
    } finally {
      ref.dispose();
    }
  });
});
