/**
 * LoadModel over loopback with the tfjs files people have: a Keras model as tensorflowjs_converter lays it
 * out (`model_config`, sharded, nested Sequential models), the same with uint8-quantized weights, and the
 * refusals of a graph model and of a weights-only manifest (status and message). Predictions on both
 * engines are checked against tfjs-layers' own loader and predict on the same files.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ElementType, Engine } from '../../api/generated/introspect/v1/common';
import { ModelFormat } from '../../api/generated/introspect/v1/models';
import { nestedFixture } from '../engines/fixture-model';
import { artifactsOf, tfjsLayersLoad, writeConverterLayout } from '../engines/tfjs-artifacts';
import { grpcError, startTestServer, type TestServer } from '../support/server';
import { floats, softmax } from './support';

describe('rpc: LoadModel with converted, quantized and graph tfjs models', function () {
  this.timeout(120_000);
  let ts: TestServer;
  let keras: tfl.LayersModel;

  before(async () => {
    ts = await startTestServer();
    keras = nestedFixture();
    const artifacts = await artifactsOf(keras);
    writeConverterLayout(path.join(ts.modelRoot, 'converted'), artifacts, { shardBytes: 2000 });
    writeConverterLayout(path.join(ts.modelRoot, 'quantized'), artifacts, { quantize: 'uint8' });
    const graphDir = path.join(ts.modelRoot, 'graph');
    fs.mkdirSync(graphDir);
    fs.writeFileSync(path.join(graphDir, 'group1-shard1of1.bin'), Buffer.alloc(16));
    fs.writeFileSync(
      path.join(graphDir, 'model.json'),
      JSON.stringify({
        format: 'graph-model',
        generatedBy: '2.15.0',
        convertedBy: 'TensorFlow.js Converter v4.22.0',
        modelTopology: {
          node: [
            { name: 'x', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' } } },
            { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
            { name: 'y', op: 'MatMul', input: ['x', 'w'] },
          ],
          library: {},
          versions: { producer: 1645 },
        },
        weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'w', shape: [2, 2], dtype: 'float32' }] }],
      }),
    );
    const weightsDir = path.join(ts.modelRoot, 'weights-only');
    fs.mkdirSync(weightsDir);
    fs.writeFileSync(path.join(weightsDir, 'weights_manifest.json'), JSON.stringify([{ paths: ['group1-shard1of1.bin'], weights: artifacts.specs }]));
  });
  after(async () => {
    keras?.dispose();
    await ts?.close();
  });

  for (const [name, what] of [
    ['converted', 'the converter layout'],
    ['quantized', 'uint8-quantized weights'],
  ] as const) {
    it(`loads ${what} and predicts on both engines like tfjs-layers on the same files`, async () => {
      const info = await ts.client.loadModel({ name, path: name });
      assert.equal(info.format, ModelFormat.MODEL_FORMAT_TFJS_LAYERS);
      assert.deepEqual(info.input?.shape, [-1, 3, 12, 12]);
      assert.deepEqual(info.convLayers.map((l) => l.name), ['stem', 'block_conv', 'block_dw', 'head']);
      assert.equal(info.classNames.length, 6);
      const n = 2;
      const pixels = Uint8Array.from({ length: n * 12 * 12 * 3 }, (_, i) => (i * 53 + 11) % 256);
      const ref = await tfjsLayersLoad(path.join(ts.modelRoot, name, 'model.json'));
      const want = tf.tidy(() => (ref.predict(tf.tensor(Float32Array.from(pixels, (v) => v / 255), [n, 12, 12, 3])) as tf.Tensor).dataSync());
      ref.dispose();
      for (const engine of [Engine.ENGINE_ONNXRUNTIME, Engine.ENGINE_TFJS]) {
        const res = await ts.client.predict({ model: name, engine, images: { shape: [n, 12, 12, 3], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(pixels) } });
        res.predictions.forEach((p, i) => {
          // tfjs-layers gives the final softmax's probabilities; the service the logits before it
          const probs = softmax(floats(p.logits));
          probs.forEach((v, k) => assert.ok(Math.abs(v - want[i * 6 + k]!) < 1e-6, `${name}, engine ${engine}, image ${i}, class ${k}: ${v} vs ${want[i * 6 + k]}`));
        });
      }
    });
  }

  it('refuses a graph model with UNIMPLEMENTED, saying what it is and what to do', async () => {
    const err = await grpcError(() => ts.client.loadModel({ name: 'g', path: 'graph/model.json' }));
    assert.equal(err.code, status.UNIMPLEMENTED);
    assert.match(err.details, /^'graph\/model\.json' is a tfjs graph model \(format "graph-model": a TensorFlow GraphDef of 3 nodes/);
    assert.match(err.details, /tensorflowjs_converter --input_format keras --output_format tfjs_layers_model/);
    assert.match(err.details, /ONNX/);
    assert.ok(!err.details.includes(ts.tmp), err.details);
  });

  it('refuses a weights-only manifest with FAILED_PRECONDITION, asking for the model.json', async () => {
    const err = await grpcError(() => ts.client.loadModel({ name: 'w', path: 'weights-only/weights_manifest.json' }));
    assert.equal(err.code, status.FAILED_PRECONDITION);
    assert.match(err.details, /^'weights-only\/weights_manifest\.json' is a tfjs weights manifest \(a list of weight groups\): weights without the model's architecture/);
    assert.match(err.details, /model\.json/);
    assert.deepEqual((await ts.client.listModels()).map((m) => m.name).sort(), ['converted', 'quantized']);
  });
});
