/**
 * LoadModel with a tfjs LayersModel (model.json + weight shards) under the model root: format
 * detection, content hash over all files, confinement of the shards, and predictions on both
 * engines against tfjs-layers' own `predict`.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ElementType, Engine } from '../../api/generated/introspect/v1/common';
import { ModelFormat } from '../../api/generated/introspect/v1/models';
import { grpcError, startTestServer, type TestServer } from '../support/server';

/** A small conv net with fixed weights (a plain LCG), input 8×8×3, 4 classes. */
function smallModel(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [8, 8, 3], filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }));
  m.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, activation: 'relu', name: 'conv2' }));
  m.add(tfl.layers.flatten({ name: 'flat' }));
  m.add(tfl.layers.dense({ units: 4, name: 'logits' }));
  let state = 12345;
  const next = (): number => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  m.setWeights(m.weights.map((w) => tf.tensor(Float32Array.from({ length: w.shape.reduce((a: number, b) => a * (b ?? 1), 1) }, next), w.shape as number[])));
  return m;
}

async function save(m: tfl.LayersModel, dir: string, shard = 'weights.bin'): Promise<void> {
  await fs.promises.mkdir(dir, { recursive: true });
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(a.weightData as ArrayBuffer));
      const json = { modelTopology: a.modelTopology, format: a.format, weightsManifest: [{ paths: [shard], weights: a.weightSpecs }] };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

describe('server: tfjs LayersModel', function () {
  this.timeout(120_000);
  let ts: TestServer;
  let model: tfl.Sequential;

  before(async () => {
    ts = await startTestServer();
    model = smallModel();
    await save(model, path.join(ts.modelRoot, 'small'));
    await save(model, path.join(ts.tmp, 'outside'));
    await save(model, path.join(ts.modelRoot, 'leaky'), '../../outside/weights.bin');
  });
  after(async () => {
    model?.dispose();
    await ts?.close();
  });

  it('loads model.json (or its folder), hashing model.json and its shards', async () => {
    const info = await ts.client.loadModel({ name: 'small', path: 'small/model.json' });
    assert.equal(info.format, ModelFormat.MODEL_FORMAT_TFJS_LAYERS);
    const json = fs.readFileSync(path.join(ts.modelRoot, 'small', 'model.json'));
    const weights = fs.readFileSync(path.join(ts.modelRoot, 'small', 'weights.bin'));
    assert.equal(info.sha256, createHash('sha256').update(json).update(weights).digest('hex'));
    assert.equal(info.sizeBytes, json.length + weights.length);
    assert.deepEqual(info.input?.shape, [-1, 3, 8, 8]);
    assert.deepEqual(info.convLayers.map((l) => [l.name, l.channels, l.outputShape]), [
      ['conv1', 5, [5, 8, 8]],
      ['conv2', 6, [6, 2, 2]],
    ]);
    assert.deepEqual(info.classNames, ['0', '1', '2', '3']);
    const byFolder = await ts.client.loadModel({ name: 'small-dir', path: 'small' });
    assert.equal(byFolder.sha256, info.sha256);
    await ts.client.unloadModel('small-dir');
    const wrong = await grpcError(() => ts.client.loadModel({ name: 'x', path: 'small/model.json', format: ModelFormat.MODEL_FORMAT_ONNX }));
    assert.equal(wrong.code, status.INVALID_ARGUMENT);
    assert.match(wrong.details, /is a tfjs LayersModel \(model\.json\), but the request says it is an ONNX model/);
  });

  it('predicts on both engines like tfjs-layers itself', async () => {
    const n = 3;
    const pixels = Uint8Array.from({ length: n * 8 * 8 * 3 }, (_, i) => (i * 37) % 256);
    const expected = tf.tidy(() => (model.predict(tf.tensor(Float32Array.from(pixels, (v) => v / 255), [n, 8, 8, 3])) as tf.Tensor).dataSync());
    for (const engine of [Engine.ENGINE_ONNXRUNTIME, Engine.ENGINE_TFJS]) {
      const res = await ts.client.predict({
        model: 'small',
        engine,
        images: { shape: [n, 8, 8, 3], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(pixels) },
      });
      res.predictions.forEach((p, i) => {
        const got = Buffer.from(p.logits!.data);
        const logits = new Float32Array(got.buffer, got.byteOffset, 4);
        logits.forEach((v, k) => assert.ok(Math.abs(v - expected[i * 4 + k]!) < 1e-4, `engine ${engine} image ${i} class ${k}: ${v} vs ${expected[i * 4 + k]}`));
      });
    }
  });

  it('refuses weight shards outside the model root, without revealing server paths', async () => {
    const err = await grpcError(() => ts.client.loadModel({ name: 'leaky', path: 'leaky/model.json' }));
    assert.equal(err.code, status.PERMISSION_DENIED);
    assert.match(err.details, /^weight shard '\.\.\/\.\.\/outside\/weights\.bin' of 'leaky\/model\.json' is outside the model root$/);
    assert.ok(!err.details.includes(ts.tmp), err.details);
    assert.deepEqual((await ts.client.listModels()).map((m) => m.name), ['small']);
  });
});
