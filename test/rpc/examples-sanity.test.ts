/**
 * DatasetExamples and SanityCheck over a real server on the bundled MNIST
 * CNN. Examples are checked against onnxruntime run on the model file with the ReLU output of the
 * layer added as a graph output (an independent path to the activations); the sanity check against
 * the structure of the model file (which nodes exist, which conv layers lie below which).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { Engine, Split } from '../../api/generated/introspect/v1/common';
import { ModelProto } from '../../services/graph/generated/onnx/onnx';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { PLANE, mnist, mnistInput } from './support';

/** Mean over space of the ReLU after conv layer `layer` (Conv → BatchNormalization → Relu), per image and channel, from onnxruntime. */
async function referenceActivations(layer: number, count: number): Promise<Float32Array[]> {
  const model = ModelProto.decode(fs.readFileSync(BUNDLED_MODEL));
  const g = model.graph!;
  const conv = g.node.filter((n) => n.opType === 'Conv')[layer]!;
  const next = (value: string, op: string) => g.node.find((n) => n.opType === op && n.input[0] === value)!;
  const relu = next(next(conv.output[0]!, 'BatchNormalization').output[0]!, 'Relu').output[0]!;
  g.output.push({ name: relu });
  const session = await InferenceSession.create(ModelProto.encode(model).finish());
  const images = new Float32Array(count * PLANE);
  for (let i = 0; i < count; i++) images.set(mnistInput('test', i), i * PLANE);
  const out = (await session.run({ [session.inputNames[0]!]: new OrtTensor('float32', images, [count, 1, 28, 28]) }))[relu]!;
  const [, C, H, W] = out.dims as number[];
  const data = out.data as Float32Array;
  return Array.from({ length: count }, (_, i) =>
    Float32Array.from({ length: C! }, (_, c) => {
      let s = 0;
      for (let p = 0; p < H! * W!; p++) s += data[(i * C! + c) * H! * W! + p]!;
      return s / (H! * W!);
    }),
  );
}

describe('rpc: DatasetExamples and SanityCheck (bundled MNIST CNN)', function () {
  this.timeout(120_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('dataset examples are the images onnxruntime finds most active, with their labels and pixels', async () => {
    const limit = 300;
    const channels = [0, 5, 31];
    const k = 4;
    const acts = await referenceActivations(1, limit);
    const m = mnist('test');
    for (const engine of [Engine.ENGINE_ONNXRUNTIME, Engine.ENGINE_TFJS]) {
      const got = await collect(ts.client.datasetExamples({ model: 'cnn', dataset: 'mnist', layer: 1, channels, k, limit, png: engine === Engine.ENGINE_ONNXRUNTIME, engine }));
      assert.equal(got.length, channels.length * k);
      assert.deepEqual(got.map((e) => e.progress), got.map((_, i) => ({ done: i + 1, total: channels.length * k })));
      for (const [j, c] of channels.entries()) {
        const mine = got.slice(j * k, (j + 1) * k);
        const order = acts.map((a, i) => ({ i, v: a[c]! })).sort((a, b) => b.v - a.v || a.i - b.i);
        mine.forEach((e, rank) => {
          assert.equal(e.layer, 1);
          assert.equal(e.neuron, c);
          assert.equal(e.rank, rank);
          assert.ok(Math.abs(e.activation - order[rank]!.v) < 1e-4, `channel ${c} rank ${rank}: ${e.activation} vs ${order[rank]!.v}`);
          assert.ok(Math.abs(e.activation - acts[e.index]![c]!) < 1e-4, `channel ${c}: image ${e.index} has activation ${acts[e.index]![c]}`);
          assert.equal(e.label, m.labels[e.index]);
          if (e.png.length > 0) {
            const png = PNG.sync.read(e.png);
            const shown = Array.from({ length: PLANE }, (_, p) => png.data[p * 4]!);
            assert.deepEqual(shown, Array.from(m.images.subarray(e.index * PLANE, (e.index + 1) * PLANE)), 'the PNG is the stored image');
          }
        });
      }
    }
    const bad: Array<[Parameters<TestServer['client']['datasetExamples']>[0], RegExp]> = [
      [{ layer: 3 }, /^layer = 3: no such conv layer/],
      [{ layer: 2, channels: [64] }, /^channels\[0\] = 64 is out of range/],
      [{ layer: 0, k: 5000 }, /^k = 5000/],
      [{ layer: 0, split: 9 as Split }, /^split/],
    ];
    for (const [req, re] of bad) {
      const err = await grpcError(() => collect(ts.client.datasetExamples({ model: 'cnn', dataset: 'mnist', ...req })));
      assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, re);
    }
  });

  it('sanity check: dense re-initialisation leaves method-1 conv curves unchanged; each conv re-initialisation changes only the layers above it', async () => {
    const g = ModelProto.decode(fs.readFileSync(BUNDLED_MODEL)).graph!;
    const gemms = g.node.filter((n) => n.opType === 'Gemm').map((n) => n.name).reverse();
    const convs = g.node.filter((n) => n.opType === 'Conv').map((n) => n.name).reverse();
    const depths = await collect(ts.client.sanityCheck({ similarity: { model: 'cnn', dataset: 'mnist', classes: [0, 1], average: { split: Split.SPLIT_TEST } }, seed: 7 }));
    assert.deepEqual(depths.map((d) => d.depth), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(depths.map((d) => d.progress), depths.map((_, i) => ({ done: i + 1, total: 6 })));
    const order = [...gemms, ...convs];
    depths.forEach((d) => assert.deepEqual(d.reinitialised, order.slice(0, d.depth)));
    const trained = depths[0]!;
    assert.deepEqual(trained.curves?.layerIndices, [0, 1, 2]);
    assert.deepEqual(trained.difference, [0, 0, 0]);
    // Depths 1, 2: only dense layers (above every conv) → identical curves under method 1.
    for (const d of depths.slice(1, 3)) assert.deepEqual(d.curves?.meanOverClasses, trained.curves?.meanOverClasses);
    // Depth 3 re-initialises conv 2, depth 4 conv 1, depth 5 conv 0: layers below the re-initialised ones keep their values.
    for (const [depth, unchanged] of [[3, [0, 1]], [4, [0]], [5, []]] as const) {
      const d = depths[depth]!;
      for (let l = 0; l < 3; l++) {
        const diff = d.difference[l]!;
        const expected = d.curves!.meanOverClasses[l]! - trained.curves!.meanOverClasses[l]!;
        assert.ok(Math.abs(diff - expected) < 1e-6, `depth ${depth} layer ${l}: difference is the curve minus the trained one`);
        if ((unchanged as readonly number[]).includes(l)) assert.equal(diff, 0, `depth ${depth}: layer ${l} is below the re-initialised layers`);
        else assert.notEqual(diff, 0, `depth ${depth}: layer ${l} changed`);
      }
    }
    const err = await grpcError(() => collect(ts.client.sanityCheck({ seed: 1 })));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /^similarity is required/);
    const badLayer = await grpcError(() => collect(ts.client.sanityCheck({ similarity: { model: 'cnn', dataset: 'mnist', layers: [4] } })));
    assert.match(badLayer.details, /^similarity\.layers\[0\] = 4/);
  });
});
