/**
 * The analysis jobs (services/jobs) without a server, as bench runs them: the bundled MNIST CNN on
 * the onnxruntime engine, MNIST test-split class means. What the job layer adds to the services is
 * checked here: the result caches (a repeat is replayed, an unscored average does not serve a scored
 * request), what the observer is told, and that Prune ranks by the values the Similarity job gives.
 */
import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import type { SimilarityEvent } from '../../services/analysis/similarity';
import { DatasetRegistry } from '../../services/data/registry';
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { classAverageImages, type AverageItem, type AverageJob, type AverageSettings } from '../../services/jobs/averages';
import { jobContext, type JobContext, type ModelContext } from '../../services/jobs/context';
import { pruneRanking } from '../../services/jobs/prune';
import { runSimilarity, type SimilarityJob } from '../../services/jobs/similarity';
import { ModelRegistry } from '../../services/models/registry';
import { BUNDLED_MODEL } from '../support/server';

interface Seen {
  images: Record<string, number>;
  lookups: string[];
}

function observedContext(): { ctx: JobContext; seen: Seen } {
  const seen: Seen = { images: {}, lookups: [] };
  const ctx = jobContext({
    observe: {
      imagesComputed: (kind, n) => (seen.images[kind] = (seen.images[kind] ?? 0) + n),
      cacheLookup: (cache, hit) => seen.lookups.push(`${cache}:${hit ? 'hit' : 'miss'}`),
    },
  });
  return { ctx, seen };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('jobs (services/jobs) without a server', function () {
  const signal = new AbortController().signal;
  const average: AverageSettings = { kind: 'mean', split: 'test' };
  let engine: OnnxRuntimeEngine;
  let mc: ModelContext;
  let data: DatasetRegistry;

  before(async function () {
    engine = new OnnxRuntimeEngine({ workers: 1, intraOpThreads: 1 });
    await engine.ready();
    const models = new ModelRegistry({ modelRoot: path.dirname(BUNDLED_MODEL), cacheBytes: 1 << 28, maxUploadBytes: 1 << 28 });
    const model = await models.loadFromPath({ name: 'cnn', path: path.basename(BUNDLED_MODEL) });
    mc = { model, kind: 'onnxruntime', engine, forward: (x, n, s) => engine.forward(model.engineModel, x, n, { signal: s }) };
    data = new DatasetRegistry({ dataRoot: os.tmpdir() });
    await data.register({ name: 'mnist', path: 'builtin:mnist' });
  });

  after(async function () {
    await engine?.close();
  });

  function similarityJob(method: 1 | 2): SimilarityJob {
    return {
      mc, dataset: data.get('mnist'), average, method, metric: 'cosine', layers: [0, 2], classes: [3, 7],
      attribution: { method: 'guided', objective: 'abs_sum' }, rankImages: 2,
    };
  }

  it('a repeated Similarity job is replayed from the cache, event for event, and the observer is told', async function () {
    const { ctx, seen } = observedContext();
    const job = similarityJob(1);
    const first = await all(runSimilarity(ctx, job, signal));
    assert.ok(first.every((e) => !e.cached));
    const layers = first.filter((e) => e.event.kind === 'layer');
    assert.equal(layers.length, 4, 'one result per (class, layer)');
    assert.equal(first.at(-1)!.event.kind, 'summary');
    const neurons = mc.model.engineModel.convLayers.filter((l) => job.layers.includes(l.index)).reduce((n, l) => n + l.channels, 0);
    assert.equal(seen.images.neuron_image, neurons * job.classes.length, 'every neuron image of every class counted once');
    assert.equal(seen.images.class_average, 2, 'two class averages computed');
    assert.deepEqual(seen.lookups, ['similarity:miss', 'averages:miss']);

    const again = await all(runSimilarity(ctx, job, signal));
    assert.ok(again.every((e) => e.cached));
    assert.deepEqual(again.map((e) => e.event), first.map((e) => e.event));
    assert.equal(seen.images.neuron_image, neurons * job.classes.length, 'nothing computed on the repeat');
    assert.deepEqual(seen.lookups, ['similarity:miss', 'averages:miss', 'similarity:hit']);

    // other parameters: computed, from the cached class averages
    const other = await all(runSimilarity(ctx, similarityJob(2), signal));
    assert.ok(other.every((e) => !e.cached));
    assert.deepEqual(seen.lookups.slice(3), ['similarity:miss', 'averages:hit']);
  });

  it("Prune ranks each layer's channels by the mean over classes of the Similarity job's values", async function () {
    const { ctx } = observedContext();
    const job = { ...similarityJob(1), rankImages: 0 };
    const events: SimilarityEvent[] = (await all(runSimilarity(ctx, job, signal))).map((e) => e.event);
    const ranking: Map<number, Float64Array> | undefined = await pruneRanking(ctx, { job }, signal);
    if (!ranking) throw new Error('no ranking for a similarity job');
    assert.deepEqual([...ranking.keys()].sort(), job.layers);
    for (const layer of job.layers) {
      const rows = events.flatMap((e) => (e.kind === 'layer' && e.layer.layer === layer ? [Array.from(e.layer.values)] : []));
      assert.equal(rows.length, job.classes.length);
      const mean = rows[0]!.map((_, k) => rows.reduce((s, r) => s + r[k]!, 0) / rows.length);
      const got: Float64Array = ranking.get(layer)!;
      assert.equal(got.length, mean.length);
      got.forEach((v, k) => assert.ok(Math.abs(v - mean[k]!) < 1e-6, `layer ${layer} channel ${k}: ${v} vs ${mean[k]}`));
    }
    // for one class: that class's values
    const one = await pruneRanking(ctx, { job, classIndex: 7 }, signal);
    const seven = events.find((e) => e.kind === 'layer' && e.layer.classIndex === 7 && e.layer.layer === 2);
    if (seven?.kind !== 'layer') throw new Error('no values of class 7, layer 2');
    assert.deepEqual(Array.from(one!.get(2)!), Array.from(seven.layer.values));
  });

  it('a class average computed without scores does not serve a request that wants them; a scored one serves both', async function () {
    const { ctx, seen } = observedContext();
    const job = (score: boolean): AverageJob => ({ mc, dataset: data.get('mnist'), settings: average, classes: [1], score });
    const run = async (score: boolean): Promise<AverageItem> => (await all(classAverageImages(ctx, job(score), signal)))[0]!;
    const unscored = await run(false);
    assert.equal(unscored.computed, true);
    assert.equal(unscored.imagesScored, 0);
    const scored = await run(true);
    assert.equal(scored.computed, true, 'the unscored entry does not serve a scored request');
    assert.ok(scored.imagesScored > 0 && Number.isFinite(scored.meanConfidence));
    assert.deepEqual(Array.from(scored.image), Array.from(unscored.image), 'the same image either way');
    const cached = await run(false);
    assert.equal(cached.computed, false, 'the scored entry serves an unscored request');
    assert.deepEqual(seen.lookups, ['averages:miss', 'averages:miss', 'averages:hit']);
    assert.equal(seen.images.class_average, 2);
  });
});
