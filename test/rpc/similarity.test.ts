/**
 * Similarity over a real server: the values of the onnxruntime engine recomputed in the test from
 * NeuronImages of the *other* engine (tfjs) with a plain cosine, at the class averages the server
 * returns from ClassAverages; rankings, dead lists and curves from those values; the cache on a
 * repeat; bad requests. On the bundled MNIST CNN, and on ResNet-20 / CIFAR-10 (batch-norm, residual
 * adds) for a few neurons of early, middle and late layers.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import {
  AttributionMethod,
  AverageKind,
  SimilarityMethod,
  SimilarityMetric,
  type LayerSimilarity,
  type SimilarityCurves,
  type SimilarityRequest,
  type SimilarityResponse,
} from '../../api/generated/introspect/v1/analysis';
import { Engine, Split } from '../../api/generated/introspect/v1/common';
import type { DeepPartial } from '../../api/generated/introspect/v1/models';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { counter, floats, meanStd, plainCosine } from './support';

const TOL = 2e-4;

interface Reference {
  /** Neuron images per layer (tfjs), by channel. */
  layers: Map<number, Float32Array[]>;
  /** The class-logit image (tfjs). */
  logit: Float32Array;
  average: Float32Array;
}

/** The class average (ClassAverages) and its neuron images from the tfjs engine (NeuronImages). */
async function reference(ts: TestServer, model: string, dataset: string, cls: number, layers: Array<{ layer: number; channels?: number[] }>, average: DeepPartial<SimilarityRequest['average']>): Promise<Reference> {
  const [a] = await collect(ts.client.classAverages({ model, dataset, classes: [cls], average }));
  const images = await collect(
    ts.client.neuronImages({ model, engine: Engine.ENGINE_TFJS, input: { source: { $case: 'tensor', value: a!.image!.tensor! } }, layers, classes: [cls] }),
  );
  const out: Reference = { layers: new Map(), logit: new Float32Array(), average: floats(a!.image?.tensor) };
  for (const m of images) {
    if (m.layer < 0) out.logit = floats(m.image?.tensor);
    else {
      const list = out.layers.get(m.layer) ?? [];
      list[m.neuron] = floats(m.image?.tensor);
      out.layers.set(m.layer, list);
    }
  }
  return out;
}

function layerMessages(msgs: SimilarityResponse[]): LayerSimilarity[] {
  return msgs.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));
}

function summary(msgs: SimilarityResponse[]): SimilarityCurves {
  const last = msgs.at(-1)?.item;
  assert.equal(last?.$case, 'summary', 'the stream ends with the summary');
  return last.value;
}

/** Checks a (class, layer) result against values recomputed from the reference images. */
function checkLayer(got: LayerSimilarity, images: Float32Array[], representative: Float32Array, rank: number): void {
  const where = `class ${got.classIndex} layer ${got.layer}`;
  const expected = images.map((im) => plainCosine(representative, im));
  assert.equal(got.values.length, images.length, `${where}: one value per channel`);
  got.values.forEach((v, k) => assert.ok(Math.abs(v - expected[k]!) < TOL, `${where} channel ${k}: ${v} vs ${expected[k]}`));
  const dead = images.flatMap((im, k) => (im.every((v) => v === 0) ? [k] : []));
  assert.deepEqual(got.dead, dead, `${where}: dead channels`);
  const [m, s] = meanStd(expected);
  assert.ok(Math.abs(got.mean - m) < TOL && Math.abs(got.std - s) < TOL, `${where}: mean/std ${got.mean}/${got.std} vs ${m}/${s}`);
  const live = expected.map((v, k) => ({ v, k })).filter((e) => !dead.includes(e.k));
  const desc = [...live].sort((a, b) => b.v - a.v);
  const asc = [...live].sort((a, b) => a.v - b.v);
  assert.equal(got.highest.length, Math.min(rank, live.length));
  assert.equal(got.lowest.length, Math.min(rank, live.length));
  for (const [list, order] of [[got.highest, desc], [got.lowest, asc]] as const) {
    list.forEach((n, i) => {
      assert.ok(Math.abs(n.value - order[i]!.v) < TOL, `${where}: ranked #${i} value ${n.value} vs ${order[i]!.v}`);
      assert.ok(Math.abs(n.value - expected[n.neuron]!) < TOL, `${where}: ranked neuron ${n.neuron} carries its own value`);
      assert.ok(plainCosine(floats(n.image?.tensor), images[n.neuron]!) > 0.9999, `${where}: image of ranked neuron ${n.neuron}`);
    });
  }
}

describe('rpc: Similarity (bundled MNIST CNN, checked against tfjs NeuronImages)', function () {
  this.timeout(120_000);
  let ts: TestServer;
  const CLASSES = [3, 7];
  const LAYERS = [0, 2];
  const average = { split: Split.SPLIT_TEST };
  const base: DeepPartial<SimilarityRequest> = { model: 'cnn', dataset: 'mnist', average, classes: CLASSES, layers: LAYERS, rankImages: 3, png: true };
  const refs = new Map<number, Reference>();

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
    for (const c of CLASSES) refs.set(c, await reference(ts, 'cnn', 'mnist', c, LAYERS.map((layer) => ({ layer })), average));
  });
  after(async () => {
    await ts?.close();
  });

  for (const method of [1, 2] as const) {
    it(`method ${method}: values, dead lists, rankings and curves agree with a plain cosine of the tfjs images`, async () => {
      const msgs = await collect(
        ts.client.similarity({ ...base, method: method === 1 ? SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE : SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP }),
      );
      const layers = layerMessages(msgs);
      assert.deepEqual(layers.map((l) => [l.classIndex, l.layer]), [[3, 0], [3, 2], [7, 0], [7, 2]]);
      for (const l of layers) {
        const ref = refs.get(l.classIndex)!;
        checkLayer(l, ref.layers.get(l.layer)!, method === 1 ? ref.average : ref.logit, 3);
        for (const n of [...l.highest, ...l.lowest]) assert.ok(n.image!.png.length > 0, 'ranked neurons carry PNGs');
      }
      const s = summary(msgs);
      assert.equal(s.classes, 2);
      assert.equal(s.layers, 2);
      assert.deepEqual(s.layerIndices, LAYERS);
      const means = layers.map((l) => l.mean);
      assert.ok(means.every((m, i) => Math.abs(m - s.mean[i]!) < 1e-6), 'curve means are the layer means');
      LAYERS.forEach((_, li) => {
        const [m, sd] = meanStd([means[li]!, means[2 + li]!]);
        assert.ok(Math.abs(s.meanOverClasses[li]! - m) < 1e-6 && Math.abs(s.stdOverClasses[li]! - sd) < 1e-6, `layer ${LAYERS[li]}: curve over classes`);
      });
      assert.deepEqual(s.deadCount, layers.map((l) => l.dead.length));
      const progress = msgs.map((m) => m.progress!);
      assert.ok(progress.every((p, i) => p.total === 2 * (16 + 64) && (i === 0 || p.done >= progress[i - 1]!.done)));
      assert.equal(progress.at(-1)!.done, 2 * (16 + 64));
      assert.ok(msgs.every((m) => !m.cached));
    });
  }

  it('a repeated request is served from the cache (cached: true, hit counted, no images computed)', async () => {
    const req = { ...base, metric: SimilarityMetric.SIMILARITY_METRIC_PEARSON, rankImages: 1 };
    const metrics = async (): Promise<[number, number, number]> => {
      const text = await (await fetch(ts.metricsUrl)).text();
      return [
        counter(text, 'introspect_cache_hits_total', { cache: 'similarity' }),
        counter(text, 'introspect_cache_misses_total', { cache: 'similarity' }),
        counter(text, 'introspect_images_computed_total', { kind: 'neuron_image' }),
      ];
    };
    const [hits0, misses0, images0] = await metrics();
    const first = await collect(ts.client.similarity(req));
    const [hits1, misses1, images1] = await metrics();
    assert.deepEqual([hits1 - hits0, misses1 - misses0, images1 - images0], [0, 1, 2 * (16 + 64)]);
    const again = await collect(ts.client.similarity(req));
    const [hits2, misses2, images2] = await metrics();
    assert.deepEqual([hits2 - hits1, misses2 - misses1, images2 - images1], [1, 0, 0]);
    assert.ok(first.every((m) => !m.cached) && again.every((m) => m.cached));
    assert.deepEqual(again.map((m) => ({ ...m, cached: false })), first);
    // Pearson values are not the cosine ones: the metric is part of the key.
    const ref = refs.get(3)!.layers.get(0)!;
    const l = layerMessages(first)[0]!;
    const pearson = (a: Float32Array, b: Float32Array): number => {
      const ma = a.reduce((s, v) => s + v, 0) / a.length;
      const mb = b.reduce((s, v) => s + v, 0) / b.length;
      return plainCosine(a.map((v) => v - ma), b.map((v) => v - mb));
    };
    l.values.forEach((v, k) => {
      if (!l.dead.includes(k)) assert.ok(Math.abs(v - pearson(refs.get(3)!.average, ref[k]!)) < TOL, `pearson of channel ${k}`);
    });
    const other = await collect(ts.client.similarity({ ...req, layers: [0] }));
    assert.ok(other.every((m) => !m.cached), 'other layers: computed');
  });

  it('bad requests are INVALID_ARGUMENT naming the field', async () => {
    const cases: Array<[DeepPartial<SimilarityRequest>, RegExp]> = [
      [{ method: 7 as SimilarityMethod }, /^method: unknown similarity method 7/],
      [{ metric: 9 as SimilarityMetric }, /^metric: unknown similarity metric 9/],
      [{ layers: [0, 5] }, /layers\[1\] = 5: no such conv layer/],
      [{ layers: [2, 2] }, /layers\[1\] = 2 is repeated/],
      [{ classes: [12] }, /classes\[0\] = 12/],
      [{ rankImages: 5000 }, /rank_images = 5000/],
      [{ attribution: { method: 8 as AttributionMethod } }, /attribution\.method/],
      [{ average: { kind: 6 as AverageKind } }, /average\.kind/],
    ];
    for (const [req, re] of cases) {
      const err = await grpcError(() => collect(ts.client.similarity({ ...base, ...req })));
      assert.equal(err.code, status.INVALID_ARGUMENT, `${re}: ${err.details}`);
      assert.match(err.details, re);
    }
    const missing = await grpcError(() => collect(ts.client.similarity({ ...base, dataset: 'nodata' })));
    assert.equal(missing.code, status.NOT_FOUND);
  });
});

describe('rpc: Similarity on ResNet-20 / CIFAR-10 (batch-norm, residual adds)', function () {
  this.timeout(180_000);
  let ts: TestServer;
  const picks = [
    { layer: 0, channels: [0, 7, 15] },
    { layer: 10, channels: [2, 30] },
    { layer: 18, channels: [0, 41, 63] },
  ];

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    ts = await startTestServer({ models: [sharedPath('models/resnet20_cifar10.onnx')], data: [sharedPath('datasets/cifar-10-batches-bin')] });
    await ts.client.loadModel({ name: 'resnet', path: 'resnet20_cifar10.onnx' });
    await ts.client.registerDataset({ name: 'cifar', path: 'cifar-10-batches-bin' });
  });
  after(async () => {
    await ts?.close();
  });

  it('method 1 and 2 values of early, middle and late neurons match a plain cosine of tfjs NeuronImages', async () => {
    const cls = 3;
    const average = { split: Split.SPLIT_TEST };
    const ref = await reference(ts, 'resnet', 'cifar', cls, picks, average);
    for (const method of [SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE, SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP]) {
      const msgs = await collect(ts.client.similarity({ model: 'resnet', dataset: 'cifar', average, classes: [cls], layers: picks.map((p) => p.layer), method }));
      const layers = layerMessages(msgs);
      assert.deepEqual(layers.map((l) => [l.layer, l.values.length]), [[0, 16], [10, 32], [18, 64]]);
      const representative = method === SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE ? ref.average : ref.logit;
      for (const { layer, channels } of picks) {
        const got = layers.find((l) => l.layer === layer)!;
        for (const k of channels) {
          const image = ref.layers.get(layer)![k]!;
          const expected = image.every((v) => v === 0) ? 0 : plainCosine(representative, image);
          assert.ok(Math.abs(got.values[k]! - expected) < TOL, `method ${method} layer ${layer} channel ${k}: ${got.values[k]} vs ${expected}`);
        }
      }
      assert.deepEqual(summary(msgs).layerIndices, [0, 10, 18]);
    }
  });
});
