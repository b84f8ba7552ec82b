/**
 * ClassAverages and ConfidenceMatrix over a real server on the bundled MNIST CNN with builtin:mnist,
 * checked against plain loops over the IDX bytes and onnxruntime run directly on the model file.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { PNG } from 'pngjs';
import { AverageKind, type AverageSpec, type ClassAverage } from '../../api/generated/introspect/v1/analysis';
import { ElementType, Split } from '../../api/generated/introspect/v1/common';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { PLANE, counter, floats, maxAbsDiff, mnist, mnistInput, referenceLogits, softmax, tensorOf, toInput } from './support';

const TEST: Partial<AverageSpec> = { split: Split.SPLIT_TEST };

/** Plain mean of the input-space images of a class of the MNIST test split, and how many there are. */
function plainMean(cls: number): { mean: Float64Array; count: number; indices: number[] } {
  const m = mnist('test');
  const sum = new Float64Array(PLANE);
  const indices: number[] = [];
  for (let i = 0; i < m.count; i++) {
    if (m.labels[i] !== cls) continue;
    indices.push(i);
    for (let p = 0; p < PLANE; p++) sum[p] += m.images[i * PLANE + p]!;
  }
  return { mean: sum.map((s) => toInput(s / indices.length)), count: indices.length, indices };
}

/** softmax(class) of each image, straight from onnxruntime. */
async function probabilities(indices: number[], cls: number): Promise<number[]> {
  const images = new Float32Array(indices.length * PLANE);
  indices.forEach((idx, r) => images.set(mnistInput('test', idx), r * PLANE));
  const logits = await referenceLogits(images, indices.length);
  return indices.map((_, r) => softmax(logits.subarray(r * 10, (r + 1) * 10))[cls]!);
}

describe('rpc: ClassAverages and ConfidenceMatrix (bundled MNIST CNN)', function () {
  this.timeout(120_000);
  let ts: TestServer;
  const averages = (req: Parameters<TestServer['client']['classAverages']>[0]): Promise<ClassAverage[]> =>
    collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', ...req }));

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('mean without rescale is the plain mean of the class images; confidences match onnxruntime on the file', async () => {
    const got = await averages({ classes: [7, 0], average: { ...TEST, kind: AverageKind.AVERAGE_KIND_MEAN, rescale: false } });
    assert.deepEqual(got.map((a) => a.classIndex), [7, 0]);
    assert.deepEqual(got.map((a) => a.progress), [{ done: 1, total: 2 }, { done: 2, total: 2 }]);
    for (const a of got) {
      const ref = plainMean(a.classIndex);
      assert.equal(a.className, String(a.classIndex));
      assert.equal(a.imagesUsed, ref.count);
      assert.deepEqual(a.image?.tensor?.shape, [1, 28, 28]);
      const image = floats(a.image?.tensor);
      assert.ok(maxAbsDiff(image, ref.mean) < 1e-5, `class ${a.classIndex}: differs by ${maxAbsDiff(image, ref.mean)}`);
      const own = softmax(await referenceLogits(image, 1));
      assert.ok(Math.abs(a.averageConfidence - own[a.classIndex]!) < 1e-4, `average confidence ${a.averageConfidence} vs ${own[a.classIndex]}`);
      assert.equal(a.predictedClass, own.indexOf(Math.max(...own)));
      const probs = await probabilities(ref.indices, a.classIndex);
      const mean = probs.reduce((s, p) => s + p, 0) / probs.length;
      assert.ok(Math.abs(a.meanConfidence - mean) < 1e-4, `mean confidence ${a.meanConfidence} vs ${mean}`);
      assert.equal(a.image?.png.length, 0, 'no PNG unless asked');
    }
  });

  it('mean with the default rescale maps the plain mean onto the class\'s input range; the PNG shows it as pixels', async () => {
    const [a] = await averages({ classes: [4], average: TEST, png: true });
    const ref = plainMean(4);
    const m = mnist('test');
    let lo = 255;
    let hi = 0;
    for (const i of ref.indices) for (let p = 0; p < PLANE; p++) {
      const v = m.images[i * PLANE + p]!;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const min = Math.min(...ref.mean);
    const max = Math.max(...ref.mean);
    const expected = ref.mean.map((v) => toInput(lo) + ((v - min) * (toInput(hi) - toInput(lo))) / (max - min));
    const image = floats(a!.image?.tensor);
    assert.ok(maxAbsDiff(image, expected) < 1e-4, `rescaled mean differs by ${maxAbsDiff(image, expected)}`);
    const png = PNG.sync.read(a!.image!.png);
    assert.equal(png.width, 28);
    assert.equal(png.height, 28);
    const display = Array.from(image, (x) => Math.min(255, Math.max(0, Math.round((x * 0.3081 + 0.1307) * 255))));
    const shown = Array.from({ length: PLANE }, (_, p) => png.data[p * 4]!);
    assert.ok(maxAbsDiff(shown, display) <= 1, 'PNG pixels are the image mapped back by the preprocessing');
  });

  it('top-k and bottom-k average the K images onnxruntime ranks highest / lowest', async () => {
    const cls = 3;
    const ref = plainMean(cls);
    const probs = await probabilities(ref.indices, cls);
    const order = ref.indices.map((idx, r) => ({ idx, p: probs[r]! }));
    for (const [kind, sign] of [[AverageKind.AVERAGE_KIND_TOP_K, -1], [AverageKind.AVERAGE_KIND_BOTTOM_K, 1]] as const) {
      const k = 5;
      const chosen = [...order].sort((a, b) => sign * (a.p - b.p) || a.idx - b.idx).slice(0, k);
      const [a] = await averages({ classes: [cls], average: { ...TEST, kind, k } });
      assert.equal(a!.imagesUsed, k);
      const m = mnist('test');
      const mean = new Float64Array(PLANE);
      for (const c of chosen) for (let p = 0; p < PLANE; p++) mean[p] += m.images[c.idx * PLANE + p]! / k;
      const expected = mean.map(toInput);
      assert.ok(maxAbsDiff(floats(a!.image?.tensor), expected) < 1e-5, `${AverageKind[kind]}: image differs`);
      const meanP = chosen.reduce((s, c) => s + c.p, 0) / k;
      assert.ok(Math.abs(a!.meanConfidence - meanP) < 1e-4, `${AverageKind[kind]}: mean confidence ${a!.meanConfidence} vs ${meanP}`);
    }
  });

  it('activation maximisation climbs from the class mean within the valid input range', async () => {
    const [mean] = await averages({ classes: [2], average: TEST });
    const [a] = await averages({ classes: [2], average: { ...TEST, kind: AverageKind.AVERAGE_KIND_ACTIVATION_MAX, steps: 10, stepSize: 0.05 } });
    assert.ok(a!.steps >= 1 && a!.steps <= 10, `steps ${a!.steps}`);
    const image = floats(a!.image?.tensor);
    const own = softmax(await referenceLogits(image, 1));
    assert.ok(Math.abs(a!.averageConfidence - own[2]!) < 1e-4, `confidence ${a!.averageConfidence} vs onnxruntime ${own[2]}`);
    assert.equal(a!.predictedClass, own.indexOf(Math.max(...own)));
    assert.ok(a!.averageConfidence > mean!.averageConfidence, `ascent raised softmax(2) from ${mean!.averageConfidence} to ${a!.averageConfidence}`);
    const [lo, hi] = [toInput(0), toInput(255)];
    assert.ok(image.every((v) => v >= lo - 1e-6 && v <= hi + 1e-6), 'clamped to the input range');
  });

  it('confidence matrix of the dataset averages and of explicit images matches onnxruntime', async () => {
    const all = await averages({ average: TEST });
    const hitsBefore = counter(await (await fetch(ts.metricsUrl)).text(), 'introspect_cache_hits_total', { cache: 'averages' });
    const res = await ts.client.confidenceMatrix({ model: 'cnn', dataset: 'mnist', average: TEST });
    const hitsAfter = counter(await (await fetch(ts.metricsUrl)).text(), 'introspect_cache_hits_total', { cache: 'averages' });
    assert.equal(hitsAfter, hitsBefore + 1, 'the averages came from the cache');
    assert.equal(res.n, 10);
    assert.equal(res.classes, 10);
    assert.deepEqual(res.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const images = new Float32Array(10 * PLANE);
    all.forEach((a, r) => images.set(floats(a.image?.tensor), r * PLANE));
    const logits = await referenceLogits(images, 10);
    for (let r = 0; r < 10; r++) {
      const row = softmax(logits.subarray(r * 10, (r + 1) * 10));
      assert.ok(maxAbsDiff(res.probabilities.slice(r * 10, (r + 1) * 10), row) < 1e-4, `row ${r}`);
      assert.ok(Math.abs(res.diagonal[r]! - row[r]!) < 1e-4, `diagonal ${r}`);
    }

    const explicit = new Float32Array(3 * PLANE);
    [0, 1, 2].forEach((i) => explicit.set(mnistInput('test', i), i * PLANE));
    const e = await ts.client.confidenceMatrix({ model: 'cnn', images: tensorOf(explicit, [3, 1, 28, 28]) });
    const eLogits = await referenceLogits(explicit, 3);
    assert.equal(e.n, 3);
    for (let r = 0; r < 3; r++) assert.ok(maxAbsDiff(e.probabilities.slice(r * 10, (r + 1) * 10), softmax(eLogits.subarray(r * 10, (r + 1) * 10))) < 1e-4);
  });

  it('bad requests are INVALID_ARGUMENT naming the field; unknown names NOT_FOUND', async () => {
    const expect = async (fn: () => Promise<unknown>, code: status, re: RegExp): Promise<void> => {
      const err = await grpcError(fn);
      assert.equal(err.code, code, `${err.details}`);
      assert.match(err.details, re);
    };
    await expect(() => averages({ average: { kind: 9 as AverageKind } }), status.INVALID_ARGUMENT, /average\.kind/);
    await expect(() => averages({ classes: [1, 10] }), status.INVALID_ARGUMENT, /classes\[1\] = 10/);
    await expect(() => averages({ classes: [1, 1] }), status.INVALID_ARGUMENT, /classes\[1\] = 1 is repeated/);
    await expect(() => averages({ average: { kind: AverageKind.AVERAGE_KIND_ACTIVATION_MAX, stopProbability: 2 } }), status.INVALID_ARGUMENT, /average\.stop_probability/);
    await expect(() => averages({ average: { split: 7 as Split } }), status.INVALID_ARGUMENT, /average\.split/);
    await expect(() => collect(ts.client.classAverages({ model: 'nope', dataset: 'mnist' })), status.NOT_FOUND, /nope/);
    await expect(() => collect(ts.client.classAverages({ model: 'cnn', dataset: 'nodata' })), status.NOT_FOUND, /nodata/);
    await expect(() => collect(ts.client.classAverages({ model: 'cnn' })), status.INVALID_ARGUMENT, /dataset is required/);
    const images = tensorOf(new Float32Array(2 * 27 * 28), [2, 1, 27, 28]);
    await expect(() => ts.client.confidenceMatrix({ model: 'cnn', images }), status.INVALID_ARGUMENT, /images\.shape \[2, 1, 27, 28\]/);
    await expect(() => ts.client.confidenceMatrix({ model: 'cnn', dataset: 'mnist', images }), status.INVALID_ARGUMENT, /either dataset .* or images/);
    await expect(() => ts.client.confidenceMatrix({ model: 'cnn' }), status.INVALID_ARGUMENT, /dataset or images is required/);
    const bytes = { shape: [1, 1, 28, 28], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.alloc(PLANE) };
    await expect(() => ts.client.confidenceMatrix({ model: 'cnn', images: bytes }), status.INVALID_ARGUMENT, /images\.dtype/);
  });
});
