/**
 * ModelService over a real server: load with a sidecar, describe, upload in chunks, predict (checked
 * against onnxruntime run directly on the model file with preprocessing written out in the test),
 * evaluate, unload.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { Fit } from '../../api/generated/introspect/v1/models';
import { ModelProto } from '../../services/graph/generated/onnx/onnx';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL, collect, startTestServer, type TestServer } from '../support/server';

const RESNET = 'models/resnet20_cifar10.onnx';
const CIFAR_TEST = 'datasets/cifar-10-batches-bin/test_batch.bin';

/** Conv nodes of an ONNX file in graph order with their output channels and what follows them. */
function onnxConvs(file: string): Array<{ name: string; channels: number; next: string[] }> {
  const m = ModelProto.decode(fs.readFileSync(file));
  const g = m.graph!;
  const dims = new Map(g.initializer.map((t) => [t.name, t.dims.map(Number)]));
  return g.node
    .filter((n) => n.opType === 'Conv')
    .map((n) => ({
      name: n.name,
      channels: dims.get(n.input[1]!)![0]!,
      next: g.node.filter((c) => c.input.includes(n.output[0]!)).map((c) => c.opType),
    }));
}

/** Weights and biases of the Conv and Gemm nodes, counted from the file. */
function onnxParameters(file: string): number {
  const g = ModelProto.decode(fs.readFileSync(file)).graph!;
  const sizes = new Map(g.initializer.map((t) => [t.name, t.dims.map(Number).reduce((a, b) => a * b, 1)]));
  let total = 0;
  for (const n of g.node) if (n.opType === 'Conv' || n.opType === 'Gemm') for (const i of n.input.slice(1)) total += sizes.get(i) ?? 0;
  return total;
}

/** The first `n` CIFAR-10 test records: HWC uint8 pixels and labels. */
function cifarImages(n: number): { hwc: Uint8Array; chw: Uint8Array; labels: number[] } {
  const raw = fs.readFileSync(sharedPath(CIFAR_TEST));
  const hwc = new Uint8Array(n * 3072);
  const chw = new Uint8Array(n * 3072);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const rec = raw.subarray(i * 3073, (i + 1) * 3073);
    labels.push(rec[0]!);
    chw.set(rec.subarray(1), i * 3072);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) hwc[i * 3072 + p * 3 + c] = rec[1 + c * 1024 + p]!;
  }
  return { hwc, chw, labels };
}

/** Logits straight from onnxruntime on the model file, preprocessing as the sidecar states it. */
async function referenceLogits(chw: Uint8Array, n: number): Promise<Float32Array> {
  const sidecar = JSON.parse(fs.readFileSync(sharedPath('models/resnet20_cifar10.json'), 'utf8')) as {
    input: { mean: number[]; std: number[] };
  };
  const x = new Float32Array(n * 3072);
  for (let i = 0; i < n * 3072; i++) {
    const c = Math.floor((i % 3072) / 1024);
    x[i] = (chw[i]! / 255 - sidecar.input.mean[c]!) / sidecar.input.std[c]!;
  }
  const session = await InferenceSession.create(fs.readFileSync(sharedPath(RESNET)));
  const out = await session.run({ input: new OrtTensor('float32', x, [n, 3, 32, 32]) });
  const logits = out[session.outputNames[0]!]!.data as Float32Array;
  await session.release();
  return logits;
}

function logitsOf(t: { data: Buffer } | undefined): Float32Array {
  const b = Buffer.from(t!.data);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function assertClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

describe('server: models', function () {
  this.timeout(120_000);
  let ts: TestServer;

  before(async function () {
    needShared(this, RESNET, CIFAR_TEST);
    ts = await startTestServer({ models: [sharedPath(RESNET), BUNDLED_MODEL] });
  });
  after(async () => {
    await ts?.close();
  });

  it('loads a shared model with its sidecar and describes its conv layers in order', async () => {
    const info = await ts.client.loadModel({ name: 'resnet', path: 'resnet20_cifar10.onnx', sidecarPath: 'resnet20_cifar10.json' });
    const file = sharedPath(RESNET);
    assert.equal(info.sha256, createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
    assert.equal(info.sizeBytes, fs.statSync(file).size);
    assert.deepEqual(info.input?.shape, [-1, 3, 32, 32]);
    assert.deepEqual(info.output?.shape, [-1, 10]);
    const convs = onnxConvs(file);
    assert.equal(convs.length, 19);
    assert.deepEqual(
      info.convLayers.map((l) => [l.index, l.name, l.channels]),
      convs.map((c, i) => [i, c.name, c.channels]),
    );
    assert.ok(info.convLayers.every((l) => l.activation === 'relu' || l.activation === ''));
    assert.deepEqual(info.convLayers[0]!.outputShape, [16, 32, 32]);
    assert.deepEqual(info.convLayers[18]!.outputShape, [64, 8, 8]);
    assert.equal(info.parameters, onnxParameters(file));
    const sidecar = JSON.parse(fs.readFileSync(sharedPath('models/resnet20_cifar10.json'), 'utf8')) as {
      input: { mean: number[]; std: number[] };
      output: { classes: string[] };
    };
    assert.deepEqual(info.classNames, sidecar.output.classes);
    info.preprocessing!.mean.forEach((m, i) => assert.ok(Math.abs(m - sidecar.input.mean[i]!) < 1e-6));
    info.preprocessing!.std.forEach((s, i) => assert.ok(Math.abs(s - sidecar.input.std[i]!) < 1e-6));
    assert.ok(Math.abs(info.preprocessing!.scale! - 1 / 255) < 1e-9);
    assert.ok(info.engines.length === 2 && info.engines.every((e) => e.device !== ''));

    const again = await ts.client.getModel('resnet');
    assert.deepEqual(again, info);
    assert.deepEqual((await ts.client.listModels()).map((m) => m.name), ['resnet']);
  });

  it('picks up <model>.json beside an ONNX file and reports folded batch-norms', async () => {
    const info = await ts.client.loadModel({ name: 'mnist-cnn', path: 'mnist_cnn.onnx' });
    const convs = onnxConvs(BUNDLED_MODEL);
    assert.deepEqual(info.convLayers.map((l) => l.channels), convs.map((c) => c.channels));
    assert.deepEqual(info.convLayers.map((l) => l.batchNormFolded), convs.map((c) => c.next.includes('BatchNormalization')));
    assert.ok(info.convLayers.every((l) => l.batchNormFolded && l.activation === 'relu'));
    const sidecar = JSON.parse(fs.readFileSync(BUNDLED_MODEL.replace('.onnx', '.json'), 'utf8')) as { input: { mean: number[] } };
    assert.ok(Math.abs(info.preprocessing!.mean[0]! - sidecar.input.mean[0]!) < 1e-6);
    assert.equal(info.preprocessing!.fit, Fit.FIT_RESIZE);
    assert.deepEqual(info.input?.shape, [-1, 1, 28, 28]);
    await ts.client.unloadModel('mnist-cnn');
  });

  it('predicts raw-pixel tensors and PNG images like onnxruntime on the file', async () => {
    const n = 4;
    const { hwc, chw } = cifarImages(n);
    const expected = await referenceLogits(chw, n);
    const res = await ts.client.predict({
      model: 'resnet',
      images: { shape: [n, 32, 32, 3], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(hwc) },
      top: 3,
    });
    assert.equal(res.predictions.length, n);
    res.predictions.forEach((p, i) => {
      const want = expected.subarray(i * 10, (i + 1) * 10);
      assertClose(logitsOf(p.logits), want, 1e-4, `image ${i}`);
      assert.equal(p.top.length, 3);
      const best = want.indexOf(Math.max(...want));
      assert.equal(p.top[0]!.classIndex, best);
      assert.ok(p.top[0]!.probability >= p.top[1]!.probability && p.top[1]!.probability >= p.top[2]!.probability);
    });

    // The same images as PNG files, and as float32 pixels.
    const encoded = Array.from({ length: n }, (_, i) => {
      const png = new PNG({ width: 32, height: 32 });
      for (let p = 0; p < 1024; p++) {
        for (let c = 0; c < 3; c++) png.data[p * 4 + c] = hwc[i * 3072 + p * 3 + c]!;
        png.data[p * 4 + 3] = 255;
      }
      return PNG.sync.write(png);
    });
    const fromPng = await ts.client.predict({ model: 'resnet', encoded });
    fromPng.predictions.forEach((p, i) => assertClose(logitsOf(p.logits), expected.subarray(i * 10, (i + 1) * 10), 1e-4, `png ${i}`));
    const floats = Float32Array.from(hwc.subarray(0, 3072));
    const fromFloat = await ts.client.predict({
      model: 'resnet',
      images: { shape: [32, 32, 3], dtype: ElementType.ELEMENT_TYPE_FLOAT32, data: Buffer.from(floats.buffer) },
    });
    assertClose(logitsOf(fromFloat.predictions[0]!.logits), expected.subarray(0, 10), 1e-4, 'float32');
  });

  it('uploads a model in chunks and serves it like the loaded one', async () => {
    const bytes = fs.readFileSync(sharedPath(RESNET));
    const info = await ts.client.uploadModel(
      { name: 'resnet-upload', classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], preprocessing: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } },
      bytes,
      { chunkBytes: 64 * 1024 },
    );
    assert.equal(info.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(info.sizeBytes, bytes.byteLength);
    assert.deepEqual(info.classNames.slice(0, 2), ['a', 'b']);
    const loaded = await ts.client.getModel('resnet');
    assert.deepEqual(info.convLayers, loaded.convLayers);
    const { hwc } = cifarImages(2);
    const images = { shape: [2, 32, 32, 3], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(hwc.subarray(0, 2 * 3072)) };
    // The header's mean/std travel as float32, the sidecar's as doubles: equal to ~1e-6.
    const [a, b] = await Promise.all([
      ts.client.predict({ model: 'resnet-upload', images }),
      ts.client.predict({ model: 'resnet', images }),
    ]);
    a.predictions.forEach((p, i) => assertClose(logitsOf(p.logits), logitsOf(b.predictions[i]!.logits), 1e-5, `upload ${i}`));
    assert.equal(await ts.client.unloadModel('resnet-upload'), true);
  });

  it('evaluates on a registered dataset, streaming progress and per-class results', async () => {
    await fs.promises.mkdir(`${ts.dataRoot}/cifar`);
    await fs.promises.copyFile(sharedPath(CIFAR_TEST), `${ts.dataRoot}/cifar/test_batch.bin`);
    await fs.promises.copyFile(sharedPath('datasets/cifar-10-batches-bin/batches.meta.txt'), `${ts.dataRoot}/cifar/batches.meta.txt`);
    await ts.client.registerDataset({ name: 'cifar', path: 'cifar' });
    const limit = 200;
    const msgs = await collect(ts.client.evaluate({ model: 'resnet', dataset: 'cifar', limit, batchSize: 50 }));
    assert.ok(msgs.length >= 2, 'progress before the result');
    const dones = msgs.map((m) => m.progress!.done);
    assert.deepEqual([...dones].sort((x, y) => x - y), dones, 'progress is monotone');
    assert.equal(msgs.at(-1)!.progress!.total, limit);
    const r = msgs.at(-1)!.result!;
    assert.ok(msgs.slice(0, -1).every((m) => m.result === undefined));
    // Accuracy against onnxruntime run directly on the same images.
    const { chw, labels } = cifarImages(limit);
    const logits = await referenceLogits(chw, limit);
    let correct = 0;
    for (let i = 0; i < limit; i++) {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
      if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
    }
    assert.equal(r.count, limit);
    assert.equal(r.correct, correct);
    assert.equal(r.perClass.length, 10);
    assert.equal(r.perClass.reduce((s, c) => s + c.count, 0), limit);
    assert.equal(r.perClass[3]!.className, 'cat');
  });

  it('unloads: the model is gone from the list and from GetModel', async () => {
    assert.equal(await ts.client.unloadModel('resnet'), true);
    assert.deepEqual(await ts.client.listModels(), []);
  });
});
