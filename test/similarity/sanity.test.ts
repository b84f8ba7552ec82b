/**
 * Sanity check (cascading re-initialisation) on the bundled MNIST CNN with onnxruntime; the per-layer
 * means are checked against tfjs neuron images of the same re-initialised copies and a plain cosine.
 */
import * as assert from 'node:assert/strict';
import type { EngineModel } from '../../services/engines/engine';
import { createEngines, type Engines } from '../../services/engines';
import { cascadeOrder, reinitialise, sanityCheck, type SanityDepth } from '../../services/analysis/sanity';
import { BUNDLED_MODEL, loadOnnxModel, mnistClassMeans, plainCosine, plainMeanStd } from './support';

const SEED = 7;

describe('sanity check (onnxruntime, checked against tfjs)', function () {
  let engines: Engines;
  let model: EngineModel;
  let averages: { classIndex: number; image: Float32Array }[];

  /** Plain per-layer mean similarity (method 1) from tfjs guided images of `m`. */
  async function plainLayerMean(m: EngineModel, image: Float32Array, layer: number): Promise<number> {
    const channels = m.convLayers[layer].channels;
    const all = await engines.tfjs.attribute(m, image, { kind: 'conv', layer, channels: [...Array(channels).keys()], objective: 'abs_sum' }, 'guided');
    const values = Array.from({ length: channels }, (_, k) => plainCosine(image, all.subarray(k * image.length, (k + 1) * image.length)));
    return plainMeanStd(values)[0];
  }

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1 }, log: () => undefined });
    await engines.ready();
    model = loadOnnxModel(BUNDLED_MODEL);
    averages = mnistClassMeans([3], 100);
  });

  after(async () => {
    await engines?.close();
  });

  it('method 1: dense re-initialisation leaves the conv curves unchanged; each conv re-initialised changes its layer and those after it', async () => {
    const depths: SanityDepth[] = [];
    for await (const d of sanityCheck({ engine: engines.onnxruntime, model, averages, method: 1, seed: SEED })) depths.push(d);
    const order = cascadeOrder(model.graph);
    assert.deepEqual(depths.map((d) => d.depth), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(depths.map((d) => d.done), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(depths[3].reinitialised, order.slice(0, 3));
    // depth 0: the trained model
    for (const l of [0, 1, 2]) {
      const m = await plainLayerMean(model, averages[0].image, l);
      assert.ok(Math.abs(depths[0].curves.meanOverClasses[l] - m) < 2e-4, `trained layer ${l}`);
    }
    // depths 1, 2: only dense layers re-initialised; nothing recomputed, nothing differs
    for (const d of depths.slice(1, 3)) {
      assert.deepEqual(d.recomputed, []);
      assert.deepEqual(Array.from(d.difference), [0, 0, 0]);
    }
    // depth 3: conv layer 2 re-initialised — layer 2 changes (to what tfjs computes on the same copy), 0 and 1 do not
    assert.deepEqual(depths[3].recomputed, [2]);
    assert.equal(depths[3].difference[0], 0);
    assert.equal(depths[3].difference[1], 0);
    const copy3 = reinitialise(model, order.slice(0, 3), SEED, 'sanity-test-3');
    const m3 = await plainLayerMean(copy3, averages[0].image, 2);
    assert.ok(Math.abs(depths[3].curves.meanOverClasses[2] - m3) < 2e-4, `re-initialised layer 2: ${depths[3].curves.meanOverClasses[2]} vs ${m3}`);
    assert.ok(Math.abs(depths[3].difference[2]) > 1e-3, `difference ${depths[3].difference[2]}`);
    await engines.tfjs.release(copy3.id);
    // depth 5: every conv re-initialised — every layer recomputed and differs from the trained curve
    assert.deepEqual(depths[5].recomputed, [0, 1, 2]);
    assert.ok(Array.from(depths[5].difference).every((v) => Math.abs(v) > 1e-3), `differences ${Array.from(depths[5].difference)}`);
  });

  it('method 2: re-initialising the last dense layer changes every layer (the class-logit image depends on it)', async () => {
    const depths: SanityDepth[] = [];
    for await (const d of sanityCheck({ engine: engines.onnxruntime, model, averages, method: 2, layers: [0], seed: SEED, maxDepth: 1 })) depths.push(d);
    assert.equal(depths.length, 2);
    assert.deepEqual(depths[1].recomputed, [0]);
    assert.ok(Math.abs(depths[1].difference[0]) > 1e-4, `difference ${depths[1].difference[0]}`);
  });
});
