/**
 * Similarity values and neuron images on the bundled MNIST CNN (3 conv layers: 16, 32, 64 channels),
 * computed with the onnxruntime engine and checked against neuron images from the *other* engine (tfjs)
 * fed to a plain cosine written here. Class averages are plain means of MNIST test images.
 */
import * as assert from 'node:assert/strict';
import type { Engine, EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import { collectSimilarity, similarity, type LayerSimilarity } from '../../services/analysis/similarity';
import { neuronImages, attributeWith } from '../../services/analysis/neuron-images';
import { BUNDLED_MODEL, loadOnnxModel, maxAbsDiff, mnistClassMeans, plainCosine, plainMeanStd } from './support';

const CLASSES = [3, 7];
const LAYERS = [0, 2];
const TOL = 2e-4;

describe('similarity (onnxruntime, checked against tfjs neuron images)', function () {
  let engines: Engines;
  let ort: Engine;
  let tfjs: Engine;
  let model: EngineModel;
  let averages: { classIndex: number; image: Float32Array }[];
  const size = 28 * 28;

  /** Guided-backprop images of every channel of a layer from the reference engine, one per row. */
  async function referenceImages(input: Float32Array, layer: number): Promise<Float32Array[]> {
    const channels = model.convLayers[layer].channels;
    const all = await tfjs.attribute(model, input, { kind: 'conv', layer, channels: [...Array(channels).keys()], objective: 'abs_sum' }, 'guided');
    return Array.from({ length: channels }, (_, k) => all.slice(k * size, (k + 1) * size));
  }

  function checkLayer(got: LayerSimilarity, expected: number[], images: Float32Array[], rank: number): void {
    const where = `class ${got.classIndex} layer ${got.layer}`;
    assert.ok(maxAbsDiff(got.values, expected) < TOL, `${where}: values differ by ${maxAbsDiff(got.values, expected)}`);
    const [m, s] = plainMeanStd(expected);
    assert.ok(Math.abs(got.mean - m) < TOL && Math.abs(got.std - s) < TOL, `${where}: mean/std ${got.mean}/${got.std} vs ${m}/${s}`);
    const dead = images.map((im, k) => (im.every((v) => v === 0) ? k : -1)).filter((k) => k >= 0);
    assert.deepEqual(got.dead, dead, `${where}: dead neurons`);
    // highest / lowest: the N live neurons at the ends of the order (ties within tolerance allowed)
    const live = expected.map((v, k) => ({ v, k })).filter((e) => !dead.includes(e.k));
    const desc = [...live].sort((a, b) => b.v - a.v);
    assert.equal(got.highest.length, Math.min(rank, live.length));
    assert.equal(got.lowest.length, Math.min(rank, live.length));
    got.highest.forEach((h, i) => {
      assert.ok(Math.abs(h.value - desc[i].v) < TOL, `${where}: highest #${i} is ${h.value}, expected ${desc[i].v}`);
      assert.ok(plainCosine(h.image, images[h.neuron]) > 0.9999, `${where}: image of highest neuron ${h.neuron}`);
    });
    const asc = [...live].sort((a, b) => a.v - b.v);
    got.lowest.forEach((l, i) => {
      assert.ok(Math.abs(l.value - asc[i].v) < TOL, `${where}: lowest #${i} is ${l.value}, expected ${asc[i].v}`);
      assert.ok(plainCosine(l.image, images[l.neuron]) > 0.9999, `${where}: image of lowest neuron ${l.neuron}`);
    });
  }

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
    ort = engines.onnxruntime;
    tfjs = engines.tfjs;
    model = loadOnnxModel(BUNDLED_MODEL);
    averages = mnistClassMeans(CLASSES, 100);
  });

  after(async () => {
    await engines?.close();
  });

  it('method 1: each value is the cosine of the tfjs neuron image with the class average; ranks, dead list and curves agree', async () => {
    const { layers, curves } = await collectSimilarity({ engine: ort, model, averages, method: 1, layers: LAYERS, rankImages: 3 });
    assert.equal(layers.length, CLASSES.length * LAYERS.length);
    const means: number[][] = [];
    for (const [ci, { classIndex, image }] of averages.entries()) {
      means.push([]);
      for (const [li, layer] of LAYERS.entries()) {
        const got = layers[ci * LAYERS.length + li];
        assert.equal(got.classIndex, classIndex);
        assert.equal(got.layer, layer);
        const images = await referenceImages(image, layer);
        const expected = images.map((im) => plainCosine(image, im));
        checkLayer(got, expected, images, 3);
        means[ci].push(plainMeanStd(expected)[0]);
      }
    }
    assert.deepEqual(curves.classes, CLASSES);
    assert.deepEqual(curves.layers, LAYERS);
    for (const [li] of LAYERS.entries()) {
      const column = means.map((row) => row[li]);
      const [m, s] = plainMeanStd(column);
      assert.ok(Math.abs(curves.meanOverClasses[li] - m) < TOL);
      assert.ok(Math.abs(curves.stdOverClasses[li] - s) < TOL);
      for (const [ci] of CLASSES.entries()) assert.ok(Math.abs(curves.mean[ci * LAYERS.length + li] - means[ci][li]) < TOL);
    }
  });

  it('method 2: each value is the cosine with the guided image of the class logit (both from tfjs)', async () => {
    const { classIndex, image } = averages[1];
    const { layers } = await collectSimilarity({ engine: ort, model, averages, classes: [classIndex], method: 2, layers: [1], rankImages: 2 });
    assert.equal(layers.length, 1);
    const phi = await tfjs.attribute(model, image, { kind: 'logit', classes: [classIndex] }, 'guided');
    assert.ok(phi.some((v) => v !== 0));
    const images = await referenceImages(image, 1);
    checkLayer(layers[0], images.map((im) => plainCosine(phi, im)), images, 2);
    // and it is not method 1 in disguise
    const m1 = images.map((im) => plainCosine(image, im));
    assert.ok(maxAbsDiff(layers[0].values, m1) > 0.05);
  });

  it('a neuron with zeroed weights is dead: value 0, listed, counted as 0 in the mean, never ranked', async () => {
    const conv = model.graph.nodes.find((n) => n.name === model.convLayers[1].node)!;
    if (conv.op.op !== 'conv') throw new Error('not a conv');
    const weights = new Map(model.graph.weights);
    const w = weights.get(conv.op.weight)!;
    const per = w.data.length / w.shape[0];
    const data = w.data.slice();
    data.fill(0, 5 * per, 6 * per);
    weights.set(conv.op.weight, { shape: w.shape, data });
    if (conv.op.bias) {
      const b = weights.get(conv.op.bias)!.data.slice();
      b[5] = 0;
      weights.set(conv.op.bias, { shape: [b.length], data: b });
    }
    const pruned: EngineModel = { ...model, id: `${model.id}+dead5`, graph: { ...model.graph, weights } };
    try {
      const { layers, curves } = await collectSimilarity({ engine: ort, model: pruned, averages: [averages[0]], method: 1, layers: [1], rankImages: 32 });
      const got = layers[0];
      assert.ok(got.dead.includes(5), `dead: ${got.dead.join(',')}`);
      assert.equal(got.values[5], 0);
      assert.ok(!got.highest.some((n) => got.dead.includes(n.neuron)) && !got.lowest.some((n) => got.dead.includes(n.neuron)));
      assert.equal(got.highest.length, 32 - got.dead.length);
      const sum = Array.from(got.values).reduce((s, v) => s + v, 0);
      assert.ok(Math.abs(got.mean - sum / 32) < 1e-6);
      assert.equal(curves.deadCount[0], got.dead.length);
      // the other channels of the layer do not depend on channel 5: their values are the trained model's
      const images = await referenceImages(averages[0].image, 1);
      images.forEach((im, k) => {
        if (k !== 5) assert.ok(Math.abs(got.values[k] - plainCosine(averages[0].image, im)) < TOL, `channel ${k}`);
      });
    } finally {
      await ort.release(pruned.id);
    }
  });

  it('streams progress between chunks and a layer event per (class, layer), then the summary', async () => {
    const kinds: string[] = [];
    let last = 0;
    let total = 0;
    for await (const e of similarity({ engine: ort, model, averages: [averages[0]], method: 1, layers: [0, 1], chunk: 10 })) {
      kinds.push(e.kind === 'layer' ? `layer${e.layer.layer}` : e.kind);
      assert.ok(e.done >= last);
      last = e.done;
      total = e.total;
    }
    assert.equal(total, 16 + 32);
    assert.equal(last, total);
    assert.deepEqual(kinds, ['progress', 'layer0', 'progress', 'progress', 'progress', 'layer1', 'summary']);
  });

  it('rejects unknown layers, classes without an average and repeated layers, naming them', async () => {
    const run = (o: Partial<Parameters<typeof collectSimilarity>[0]>) => collectSimilarity({ engine: ort, model, averages, method: 1, ...o });
    await assert.rejects(run({ layers: [3] }), /conv layer 3 does not exist/);
    await assert.rejects(run({ classes: [5] }), /no class-average image was given for class 5/);
    await assert.rejects(run({ layers: [0, 0] }), /layers are repeated/);
    await assert.rejects(run({ metric: 'manhattan' as never, layers: [0] }), /unknown similarity metric 'manhattan'/);
  });
});

describe('neuron images (onnxruntime, checked against tfjs)', function () {
  let engines: Engines;
  let model: EngineModel;
  let input: Float32Array;

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
    model = loadOnnxModel(BUNDLED_MODEL);
    input = mnistClassMeans([2], 50)[0].image;
  });

  after(async () => {
    await engines?.close();
  });

  it('yields class logits first, then channels in order, in chunks, with the same images as one tfjs call', async () => {
    const items = [];
    for await (const it of neuronImages({ engine: engines.onnxruntime, model, input, layers: [{ layer: 0 }], classes: [2, 4], method: 'deconv', objective: 'abs_sum', chunk: 5 })) {
      items.push({ ...it, image: it.image.slice() });
    }
    assert.deepEqual(
      items.map((i) => [i.layer, i.neuron]),
      [[-1, 2], [-1, 4], ...Array.from({ length: 16 }, (_, k) => [0, k])],
    );
    assert.deepEqual(items.map((i) => i.done), Array.from({ length: 18 }, (_, k) => k + 1));
    const ref = await engines.tfjs.attribute(model, input, { kind: 'conv', layer: 0, channels: [...Array(16).keys()], objective: 'abs_sum' }, 'deconv');
    const logits = await engines.tfjs.attribute(model, input, { kind: 'logit', classes: [2, 4] }, 'deconv');
    const size = input.length;
    items.forEach((it, i) => {
      const expected = i < 2 ? logits.subarray(i * size, (i + 1) * size) : ref.subarray((i - 2) * size, (i - 1) * size);
      const scale = Math.max(...Array.from(expected, Math.abs));
      assert.ok(maxAbsDiff(it.image, expected) <= 1e-4 * scale + 1e-7, `item ${i}`);
      assert.equal(it.allZero, expected.every((v) => v === 0));
    });
  });

  it('stops with a cancelled error when the signal fires', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const it of neuronImages({ engine: engines.onnxruntime, model, input, layers: [{ layer: 1 }], method: 'guided', chunk: 4, signal: controller.signal })) {
          seen.push(it.neuron);
          if (seen.length === 4) controller.abort();
        }
      })(),
      (e: Error & { kind?: string }) => e.kind === 'cancelled',
    );
    assert.ok(seen.length >= 4 && seen.length < 32);
  });

  it('integrated gradients is complete: attributions sum to f(x) − f(baseline), for a logit and for a relu_sum neuron', async () => {
    const ort = engines.onnxruntime;
    const baseline = new Float32Array(input.length).fill((0 - 0.1307) / 0.3081); // black after preprocessing
    const cls = 2;
    const ig = await attributeWith(ort, model, input, { kind: 'logit', classes: [cls] }, { method: 'integrated_gradients', igSteps: 128, igBaseline: baseline });
    const logits = await engines.tfjs.forward(model, Float32Array.from([...input, ...baseline]), 2);
    const delta = logits[cls] - logits[10 + cls];
    const sum = ig.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sum - delta) <= 0.03 * Math.abs(delta), `sum ${sum} vs f(x) − f(x') ${delta}`);

    // conv layer 1 channel 3, objective sum(relu(z)) = H·W · (spatial mean of the ReLU output)
    const layer = model.convLayers[1];
    assert.equal(layer.activation, 'relu');
    const igN = await attributeWith(ort, model, input, { kind: 'conv', layer: 1, channels: [3], objective: 'relu_sum' }, { method: 'integrated_gradients', igSteps: 128, igBaseline: baseline });
    const acts = await engines.tfjs.activations(model, Float32Array.from([...input, ...baseline]), 2, [1]);
    const hw = layer.shape[1] * layer.shape[2];
    const deltaN = hw * (acts[0].mean[3] - acts[0].mean[layer.channels + 3]);
    const sumN = igN.reduce((s, v) => s + v, 0);
    assert.ok(Math.abs(sumN - deltaN) <= 0.03 * Math.abs(deltaN), `neuron: sum ${sumN} vs ${deltaN}`);
  });
});
