/**
 * ShardedClient against real servers on loopback (bundled MNIST CNN, builtin:mnist): a Similarity
 * and a Prune job split over three servers equal the same job on one server; a replica that refuses
 * (heavy-stream limit 1) or shuts down mid-job is retried around; all replicas down names the shards
 * that failed; a non-transient status ends the job at once.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import {
  PruneCriterion,
  type PruneRequest,
  type PruneResponse,
  type SimilarityRequest,
  type SimilarityResponse,
} from '../../api/generated/introspect/v1/analysis';
import { Split } from '../../api/generated/introspect/v1/common';
import type { DeepPartial } from '../../api/generated/introspect/v1/models';
import { ShardedClient, ShardedJobError, type RetryEvent } from '../../clients/sharded';
import { BUNDLED_MODEL, collect, startTestServer, type TestServer } from '../support/server';

const MODEL = { name: 'cnn', path: 'mnist_cnn.onnx' };
const DATASET = { name: 'mnist', path: 'builtin:mnist' };
const TOL = 1e-6;

function near(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= TOL, `${what}: ${a} vs ${b}`);
}

function nearAll(a: number[], b: number[], what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  a.forEach((v, i) => near(v, b[i]!, `${what}[${i}]`));
}

/** The (class, layer) items and the summary of a Similarity stream, checked equal to a reference stream. */
function assertSameSimilarity(got: SimilarityResponse[], want: SimilarityResponse[]): void {
  const items = (msgs: SimilarityResponse[]) => msgs.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));
  const g = items(got);
  const w = items(want);
  assert.deepEqual(
    g.map((l) => [l.classIndex, l.layer]),
    w.map((l) => [l.classIndex, l.layer]),
    'the same (class, layer) items in the same order',
  );
  g.forEach((l, i) => {
    const where = `class ${l.classIndex} layer ${l.layer}`;
    nearAll(l.values, w[i]!.values, `${where} values`);
    assert.deepEqual(l.dead, w[i]!.dead, `${where} dead`);
    near(l.mean, w[i]!.mean, `${where} mean`);
    near(l.std, w[i]!.std, `${where} std`);
  });
  const gs = got.at(-1)?.item;
  const ws = want.at(-1)?.item;
  assert.equal(gs?.$case, 'summary', 'the merged stream ends with its summary');
  assert.equal(ws?.$case, 'summary');
  assert.equal(gs.value.classes, ws.value.classes);
  assert.deepEqual(gs.value.layerIndices, ws.value.layerIndices);
  assert.deepEqual(gs.value.deadCount, ws.value.deadCount);
  for (const k of ['mean', 'std', 'meanOverClasses', 'stdOverClasses'] as const) nearAll(gs.value[k], ws.value[k], `summary ${k}`);
  assert.deepEqual(got.at(-1)?.progress, want.at(-1)?.progress, 'merged progress ends where one server\'s does');
}

describe('sharding: ShardedClient over three loopback servers', function () {
  this.timeout(120_000);
  let servers: TestServer[] = [];
  let sharded: ShardedClient;
  const similarityReq: DeepPartial<SimilarityRequest> = { model: 'cnn', dataset: 'mnist', classes: [1, 4, 7], average: { split: Split.SPLIT_TEST }, rankImages: 2 };
  let singleSimilarity: SimilarityResponse[];

  before(async () => {
    servers = await Promise.all([0, 1, 2].map(() => startTestServer({ models: [BUNDLED_MODEL] })));
    sharded = new ShardedClient(servers.map((s) => s.address), { backoffMs: 20 });
    await sharded.ensureEverywhere(MODEL, DATASET);
    singleSimilarity = await collect(servers[0]!.client.similarity(similarityReq));
  });
  after(async () => {
    sharded?.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  it('ensureEverywhere loaded the model and data set on every server, and is idempotent', async () => {
    const again = await sharded.ensureEverywhere(MODEL, DATASET);
    assert.equal(again.models.length, 3);
    assert.equal(new Set(again.models.map((m) => m.sha256)).size, 1);
    for (const s of servers) {
      assert.deepEqual((await s.client.listModels()).map((m) => m.name), ['cnn']);
      assert.deepEqual((await s.client.listDatasets()).map((d) => d.name), ['mnist']);
    }
  });

  it('a Similarity job split by (class, layer) equals one server\'s (values, dead lists, rankings, curves)', async () => {
    const before = sharded.retries;
    const got = await collect(sharded.similarity(similarityReq));
    assertSameSimilarity(got, singleSimilarity);
    const layers = (msgs: SimilarityResponse[]) => msgs.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));
    layers(got).forEach((l, i) => {
      const w = layers(singleSimilarity)[i]!;
      assert.deepEqual(l.highest.map((n) => n.neuron), w.highest.map((n) => n.neuron), 'highest neurons');
      assert.deepEqual(l.lowest.map((n) => n.neuron), w.lowest.map((n) => n.neuron), 'lowest neurons');
    });
    assert.equal(sharded.retries, before, 'no retries when every server answers');
    const dones = got.filter((m) => m.progress).map((m) => m.progress!.done);
    assert.ok(dones.length > got.length / 2, 'progress is merged into the stream');
  });

  it('a Prune job split by (layer, criterion) equals one server\'s: the baseline once, results in request order', async () => {
    const req: DeepPartial<PruneRequest> = {
      model: 'cnn',
      dataset: 'mnist',
      layers: [2, 0],
      criteria: [PruneCriterion.PRUNE_CRITERION_L1, PruneCriterion.PRUNE_CRITERION_RANDOM, PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM],
      fractions: [0.25, 0.5],
      randomSeeds: 2,
      limit: 300,
      similarity: { classes: [0, 3], average: { split: Split.SPLIT_TEST } },
    };
    const results = (msgs: PruneResponse[]) => msgs.flatMap((m) => (m.result ? [m.result] : []));
    const want = await collect(servers[1]!.client.prune(req));
    const got = await collect(sharded.prune(req));
    assert.equal(got[0]!.result, undefined, 'the first message is the baseline alone');
    near(got[0]!.baselineAccuracy, want[0]!.baselineAccuracy, 'baseline');
    assert.ok(got.every((m) => m.baselineAccuracy === got[0]!.baselineAccuracy), 'one baseline');
    const g = results(got);
    const w = results(want);
    assert.equal(g.length, 2 * 3 * 2);
    assert.deepEqual(
      g.map((r) => [r.layer, r.criterion, r.fraction, r.pruned, r.seeds]),
      w.map((r) => [r.layer, r.criterion, r.fraction, r.pruned, r.seeds]),
    );
    g.forEach((r, i) => {
      near(r.accuracy, w[i]!.accuracy, `result ${i} accuracy`);
      near(r.accuracyStd, w[i]!.accuracyStd, `result ${i} accuracy std`);
      nearAll(r.perClassAccuracy, w[i]!.perClassAccuracy, `result ${i} per class`);
    });
  });

  it('one target naming several addresses (as a headless Service\'s DNS name resolves) is balanced round_robin over them', async () => {
    const started = async (ts: TestServer): Promise<number> => {
      const text = await (await fetch(ts.metricsUrl)).text();
      const m = /^grpc_server_started_total\{[^}]*grpc_method="Similarity"[^}]*\} (\d+)$/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await Promise.all(servers.slice(0, 2).map(started));
    const retried: RetryEvent[] = [];
    const sc = new ShardedClient([`ipv4:${servers[0]!.address},${servers[1]!.address}`], { replicas: 2, onRetry: (e) => retried.push(e) });
    try {
      assert.equal(sc.clients.length, 1, 'one channel');
      const got = await collect(sc.similarity(similarityReq));
      assertSameSimilarity(got, singleSimilarity);
    } finally {
      sc.close();
    }
    const after = await Promise.all(servers.slice(0, 2).map(started));
    const calls = after.map((n, i) => n - before[i]!);
    // One call per shard, plus one per retry (a loaded CI machine can make a shard's first try fail).
    assert.equal(calls[0]! + calls[1]!, 3 * 3 + retried.length,
      `one call per shard and per retry: ${calls.join(' + ')}; retries: ${JSON.stringify(retried.map((e) => e.code))}`);
    assert.ok(calls.every((n) => n > 0), `both addresses served shards: ${calls.join(', ')}`);
  });

  it('retries shards a server refuses (heavy-stream limit 1) on the others, and counts the retries', async () => {
    const limited = await startTestServer({ models: [BUNDLED_MODEL], config: { maxHeavyStreams: 1 } });
    const events: RetryEvent[] = [];
    const sc = new ShardedClient([limited.address, servers[2]!.address], { perServer: 3, backoffMs: 20, onRetry: (e) => events.push(e) });
    try {
      await sc.ensureEverywhere(MODEL, DATASET);
      const got = await collect(sc.similarity(similarityReq));
      assertSameSimilarity(got, singleSimilarity);
      assert.ok(limited.server.heavyStreams.refused > 0, 'the limited server refused some shards');
      assert.ok(sc.retries > 0 && sc.retries === events.length, `retries counted: ${sc.retries}`);
      assert.ok(events.some((e) => e.code === status.RESOURCE_EXHAUSTED && e.server === limited.address), 'refusals were retried');
    } finally {
      sc.close();
      await limited.close();
    }
  });

  it('completes a job when a server shuts down in the middle of it', async () => {
    const doomed = await startTestServer({ models: [BUNDLED_MODEL] });
    const events: RetryEvent[] = [];
    const sc = new ShardedClient([doomed.address, servers[0]!.address, servers[1]!.address], { backoffMs: 20, onRetry: (e) => events.push(e) });
    try {
      await sc.ensureEverywhere(MODEL, DATASET);
      const req = { ...similarityReq, classes: [2, 5], rankImages: 0 };
      const want = await collect(servers[0]!.client.similarity(req));
      const job = collect(sc.similarity(req));
      const t0 = Date.now();
      while (doomed.server.app.rpc.calls.size === 0) {
        assert.ok(Date.now() - t0 < 60_000, 'the doomed server never got a shard');
        await new Promise((r) => setTimeout(r, 2));
      }
      await doomed.close(0);
      const got = await job;
      assertSameSimilarity(got, want);
      assert.ok(sc.retries > 0, 'the shards in flight on the closed server were retried');
      assert.ok(events.every((e) => e.server === doomed.address));
      assert.ok(events.some((e) => e.code === status.CANCELLED || e.code === status.UNAVAILABLE), events.map((e) => status[e.code]).join());
    } finally {
      sc.close();
      await doomed.close();
    }
  });

  it('with every server down, fails naming the shards that failed', async () => {
    const gone = await Promise.all([0, 1].map(() => startTestServer()));
    const addresses = gone.map((g) => g.address);
    await Promise.all(gone.map((g) => g.close()));
    const sc = new ShardedClient(addresses, { maxAttempts: 2, backoffMs: 5, maxBackoffMs: 20 });
    try {
      const err = await collect(sc.similarity({ model: 'cnn', dataset: 'mnist', classes: [0, 1], layers: [0, 2] })).then(
        () => assert.fail('the job should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ShardedJobError, String(err));
      assert.equal(err.code, status.UNAVAILABLE);
      assert.equal(err.failures.length, 4);
      for (const label of ['class 0 layer 0', 'class 0 layer 2', 'class 1 layer 0', 'class 1 layer 2']) assert.match(err.details, new RegExp(label));
      assert.match(err.details, /4 of 4 shards failed after 2 attempts/);
      assert.ok(err.failures.every((f) => f.attempts === 2));
    } finally {
      sc.close();
    }
  });

  it('a status that is not transient (an unknown model) ends the job at once, without retries', async () => {
    const before = sharded.retries;
    const err = await collect(sharded.similarity({ model: 'nope', dataset: 'mnist', classes: [0], layers: [0, 1] })).then(
      () => assert.fail('the job should fail'),
      (e: unknown) => e as { code: number; details: string },
    );
    assert.equal(err.code, status.NOT_FOUND, err.details);
    assert.match(err.details, /nope/);
    assert.equal(sharded.retries, before);
  });
});
