/** The engine-free parts of the similarity analyses: ordering, ranking, heaps, curves, seeded init. */
import * as assert from 'node:assert/strict';
import { TopK } from '../../services/analysis/examples';
import { inOrder } from '../../services/analysis/neuron-images';
import { cascadeOrder, heNormal, reinitialise, seededUniform, upstreamNodes } from '../../services/analysis/sanity';
import { buildCurves } from '../../api/curves';
import { LayerAccumulator } from '../../services/analysis/similarity';
import { BUNDLED_MODEL, loadOnnxModel, plainMeanStd } from './support';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('similarity building blocks', () => {
  it('inOrder keeps at most N tasks in flight and yields in task order even when later ones finish first', async () => {
    let inflight = 0;
    let peak = 0;
    const out: number[] = [];
    for await (const r of inOrder([30, 5, 20, 1, 10], 3, async (ms) => {
      inflight++;
      peak = Math.max(peak, inflight);
      await delay(ms);
      inflight--;
      return ms;
    })) {
      out.push(r);
    }
    assert.deepEqual(out, [30, 5, 20, 1, 10]);
    assert.equal(peak, 3);
  });

  it('the layer accumulator keeps the N highest and lowest live neurons as a full sort would', () => {
    let state = 7;
    const rand = () => ((state = (state * 48271) % 2147483647) / 2147483647) * 2 - 1;
    const values = Array.from({ length: 200 }, () => Math.round(rand() * 50) / 50); // many ties
    const dead = new Set([3, 17, 150]);
    const acc = new LayerAccumulator(4, 2, values.length, 6);
    values.forEach((v, k) => acc.add(k, v, dead.has(k), Float32Array.of(k, v)));
    const r = acc.result();
    const live = values.map((v, k) => ({ v, k })).filter((e) => !dead.has(e.k));
    const desc = [...live].sort((a, b) => b.v - a.v || a.k - b.k).slice(0, 6);
    const asc = [...live].sort((a, b) => a.v - b.v || a.k - b.k).slice(0, 6);
    assert.deepEqual(r.highest.map((n) => n.neuron), desc.map((e) => e.k));
    assert.deepEqual(r.lowest.map((n) => n.neuron), asc.map((e) => e.k));
    r.highest.forEach((n) => assert.deepEqual(Array.from(n.image), [n.neuron, Math.fround(values[n.neuron])]));
    assert.deepEqual(r.dead, [3, 17, 150]);
    const counted = values.map((v, k) => (dead.has(k) ? 0 : v));
    const [m, s] = plainMeanStd(counted);
    assert.ok(Math.abs(r.mean - m) < 1e-6 && Math.abs(r.std - s) < 1e-6);
  });

  it('curves: per-class rows, mean and std over classes of the class means', () => {
    const stats = [
      [{ mean: 0.1, std: 0.01, dead: 0 }, { mean: 0.3, std: 0.02, dead: 2 }],
      [{ mean: 0.5, std: 0.03, dead: 1 }, { mean: 0.1, std: 0.04, dead: 0 }],
    ];
    const c = buildCurves([2, 5], [0, 3], stats);
    assert.deepEqual(Array.from(c.deadCount), [0, 2, 1, 0]);
    assert.ok(Math.abs(c.meanOverClasses[0] - 0.3) < 1e-7 && Math.abs(c.meanOverClasses[1] - 0.2) < 1e-7);
    assert.ok(Math.abs(c.stdOverClasses[0] - 0.2) < 1e-7 && Math.abs(c.stdOverClasses[1] - 0.1) < 1e-7);
    assert.ok(Math.abs(c.std[3] - 0.04) < 1e-7);
  });

  it('TopK keeps the K highest activations, lower index first on ties', () => {
    const heap = new TopK(4);
    const acts = [0.5, 0.9, 0.1, 0.9, 0.7, 0.3, 0.9, 0.8];
    acts.forEach((a, i) => heap.push({ activation: a, index: i, label: 0 }));
    assert.deepEqual(heap.sorted().map((e) => e.index), [1, 3, 6, 7]);
  });

  it('seeded He-normal init: deterministic per (seed, layer), std √(2/fan_in), zero bias, on a copy', () => {
    const model = loadOnnxModel(BUNDLED_MODEL);
    const order = cascadeOrder(model.graph);
    assert.equal(order.length, 5);
    assert.deepEqual(
      order.map((n) => model.graph.nodes.find((x) => x.name === n)!.op.op),
      ['dense', 'dense', 'conv', 'conv', 'conv'],
    );
    assert.equal(order[2], model.convLayers[2].node);
    const a = reinitialise(model, order.slice(0, 3), 42, 'a');
    const b = reinitialise(model, order.slice(0, 4), 42, 'b');
    const c = reinitialise(model, order.slice(0, 3), 43, 'c');
    const conv = model.graph.nodes.find((n) => n.name === order[2])!;
    if (conv.op.op !== 'conv') throw new Error('not a conv');
    const wa = a.graph.weights.get(conv.op.weight)!.data;
    assert.deepEqual(wa, b.graph.weights.get(conv.op.weight)!.data, 'a layer gets the same weights at every depth');
    assert.notDeepEqual(wa, c.graph.weights.get(conv.op.weight)!.data);
    assert.notDeepEqual(wa, model.graph.weights.get(conv.op.weight)!.data, 'the original is untouched');
    const shape = model.graph.weights.get(conv.op.weight)!.shape;
    const fanIn = shape[1] * shape[2] * shape[3];
    const [m, s] = plainMeanStd(Array.from(wa));
    assert.ok(Math.abs(s / Math.sqrt(2 / fanIn) - 1) < 0.03, `std ${s}`);
    assert.ok(Math.abs(m) < 0.05 * s);
    if (conv.op.bias) assert.ok(a.graph.weights.get(conv.op.bias)!.data.every((v) => v === 0));
    assert.equal(a.id, 'a');
    // Box–Muller normals: about 68.3% within one std
    const z = heNormal([20000, 1], seededUniform(1, 'x')).map((v) => v / Math.SQRT2);
    const within = z.filter((v) => Math.abs(v) < 1).length / z.length;
    assert.ok(Math.abs(within - 0.6827) < 0.01, String(within));
  });

  it('upstream nodes of a conv output include the earlier convs and none of the later layers', () => {
    const model = loadOnnxModel(BUNDLED_MODEL);
    const up = upstreamNodes(model.graph, model.convLayers[1].output);
    assert.ok(up.has(model.convLayers[0].node) && up.has(model.convLayers[1].node));
    assert.ok(!up.has(model.convLayers[2].node));
    assert.ok(![...up].some((n) => model.graph.nodes.find((x) => x.name === n)!.op.op === 'dense'));
  });
});
