/**
 * Reliability over a real loopback server on the bundled MNIST CNN: many concurrent streaming clients
 * with every message accounted for and memory bounded; a slow reader held back by flow control;
 * deadlines and cancellation stopping the engine's work (pool counters); unloading a model under a
 * running stream. Bounded in count and time; no assertion on speed.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { IntrospectClient } from '../../clients/client';
import { AttributionMethod } from '../../api/generated/introspect/v1/analysis';
import { Split } from '../../api/generated/introspect/v1/common';
import type { Sample } from '../../api/generated/introspect/v1/datasets';
import { BUNDLED_MODEL, grpcError, startTestServer, type TestServer } from '../support/server';
import { counter, until } from '../rpc/support';
import { MiB } from './support';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('production: reliability under load and faults', function () {
  this.timeout(120_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxHeavyStreams: 16, workers: 2 } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  const sent = async (method: string): Promise<number> =>
    counter(await (await fetch(ts.metricsUrl)).text(), 'grpc_server_msg_sent_total', {
      grpc_type: 'server_stream',
      grpc_service: method.startsWith('Neuron') ? 'introspect.v1.AnalysisService' : method === 'GetSamples' ? 'introspect.v1.DatasetService' : 'introspect.v1.ModelService',
      grpc_method: method,
    });

  it('16 concurrent streaming clients (8 Evaluate, 8 NeuronImages): every message arrives, memory stays bounded', async () => {
    const EVAL_IMAGES = 1000;
    const before = { evaluate: await sent('Evaluate'), neurons: await sent('NeuronImages') };
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 50);
    const clients = Array.from({ length: 16 }, () => new IntrospectClient(ts.address));
    try {
      const runs = clients.map(async (c, i) => {
        if (i % 2 === 0) {
          let messages = 0;
          let lastDone = 0;
          let result = -1;
          for await (const m of c.evaluate({ model: 'cnn', dataset: 'mnist', split: Split.SPLIT_TEST, limit: EVAL_IMAGES, batchSize: 50 + i })) {
            messages++;
            const done = Number(m.progress?.done ?? 0);
            assert.ok(done >= lastDone, 'progress never goes back');
            lastDone = done;
            if (m.result) result = Number(m.result.count);
          }
          assert.equal(result, EVAL_IMAGES, `client ${i}: every image evaluated`);
          return { kind: 'evaluate' as const, messages };
        }
        const layer = (i >> 1) % 3;
        const got: string[] = [];
        for await (const m of c.neuronImages({
          model: 'cnn',
          input: { source: { $case: 'sample', value: { dataset: 'mnist', index: i } } },
          layers: [{ layer }],
          png: true,
        })) {
          got.push(`${m.layer}:${m.neuron}`);
          assert.equal(m.progress?.done, got.length, `client ${i}: progress counts every image`);
          assert.ok((m.image?.png?.length ?? 0) > 0, 'a PNG in each message');
        }
        assert.equal(new Set(got).size, got.length, `client ${i}: no image twice`);
        assert.ok(got.length > 0);
        return { kind: 'neurons' as const, messages: got.length };
      });
      const results = await Promise.all(runs);
      const received = {
        evaluate: results.filter((r) => r.kind === 'evaluate').reduce((a, r) => a + r.messages, 0),
        neurons: results.filter((r) => r.kind === 'neurons').reduce((a, r) => a + r.messages, 0),
      };
      // Every message the server says it sent was received, and nothing more.
      assert.equal((await sent('Evaluate')) - before.evaluate, received.evaluate);
      assert.equal((await sent('NeuronImages')) - before.neurons, received.neurons);
      const grow = { rss: (peakRss - base.rss) / MiB, heap: (peakHeap - base.heapUsed) / MiB };
      console.log(`      load: 16 streams, ${received.evaluate} Evaluate + ${received.neurons} NeuronImages messages; peak growth rss ${grow.rss.toFixed(0)} MiB, heap ${grow.heap.toFixed(0)} MiB`);
      assert.ok(grow.heap < 512, `heap grew by ${grow.heap.toFixed(0)} MiB under load`);
      assert.ok(grow.rss < 1536, `RSS grew by ${grow.rss.toFixed(0)} MiB under load`);
    } finally {
      clearInterval(sampler);
      for (const c of clients) c.close();
    }
    await until(() => ts.server.heavyStreams.active === 0 && ts.server.app.rpc.calls.size === 0, 'all calls to end', 10_000);
  });

  it('a slow reader holds the server back (flow control), then gets every message', async () => {
    const TOTAL = 10_000;
    const before = await sent('GetSamples');
    const call = ts.client.datasets.getSamples({ dataset: 'mnist', split: Split.SPLIT_TEST, indices: [], offset: 0, limit: TOTAL, png: false });
    const indices: number[] = [];
    await new Promise<void>((resolve) => {
      call.once('data', (s: Sample) => {
        indices.push(Number(s.index));
        call.pause();
        resolve();
      });
    });
    // While paused, the server stops once the transport's windows and the stream buffer are full.
    await sleep(800);
    const stalledAt = (await sent('GetSamples')) - before;
    await sleep(800);
    const later = (await sent('GetSamples')) - before;
    console.log(`      slow reader: the server sent ${stalledAt} of ${TOTAL} samples while the client read 1`);
    assert.equal(later, stalledAt, 'the server does not send while the client is not reading');
    assert.ok(stalledAt < TOTAL / 4, `the server ran ahead by ${stalledAt} messages`);
    // Now read slowly: a few at a time, then all.
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (s: Sample) => indices.push(Number(s.index)));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    call.resume();
    await done;
    assert.equal(indices.length, TOTAL);
    assert.deepEqual(indices.slice(0, 3), [0, 1, 2]);
    assert.equal(indices[TOTAL - 1], TOTAL - 1);
  });

  /** Waits until the engine pool is quiet, then checks it stays quiet (no more jobs dispatched). */
  async function engineStops(what: string): Promise<number> {
    const ort = ts.server.app.engines.onnxruntime;
    await until(() => {
      const c = ort.poolCounters();
      return c.completed === c.dispatched;
    }, `${what}: the engine's jobs to finish`, 20_000);
    const settled = ort.poolCounters().dispatched;
    await sleep(700);
    assert.equal(ort.poolCounters().dispatched, settled, `${what}: no engine job dispatched after the call ended`);
    await until(() => ts.server.app.rpc.calls.size === 0 && ts.server.heavyStreams.active === 0, `${what}: the call to end`, 10_000);
    return settled;
  }

  it('a deadline stops an Evaluate of the whole training split: DEADLINE_EXCEEDED, engine work stops', async () => {
    const ort = ts.server.app.engines.onnxruntime;
    const start = ort.poolCounters().dispatched;
    const t0 = Date.now();
    const e = await grpcError(async () => {
      for await (const _ of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', split: Split.SPLIT_TRAIN, batchSize: 64 }, { timeoutMs: 600 })) void _;
    });
    assert.equal(e.code, status.DEADLINE_EXCEEDED);
    assert.ok(Date.now() - t0 < 10_000, 'the client heard within 10 s');
    const jobs = (await engineStops('deadline')) - start;
    assert.ok(jobs > 0 && jobs < 60_000 / 64, `${jobs} engine jobs ran (a full pass needs ${Math.ceil(60_000 / 64)})`);
  });

  it('a client cancel stops NeuronImages (integrated gradients): engine work stops, server serves on', async () => {
    const controller = new AbortController();
    const ort = ts.server.app.engines.onnxruntime;
    const start = ort.poolCounters().dispatched;
    let got = 0;
    const e = await grpcError(async () => {
      for await (const _ of ts.client.neuronImages(
        {
          model: 'cnn',
          input: { source: { $case: 'sample', value: { dataset: 'mnist', index: 1 } } },
          attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 256 },
        },
        { signal: controller.signal },
      )) {
        void _;
        if (++got === 1) controller.abort();
      }
    });
    assert.equal(e.code, status.CANCELLED);
    await engineStops('cancel');
    assert.ok(ort.poolCounters().dispatched > start);
    assert.equal((await ts.client.listModels()).length, 1);
  });

  it('unloading a model under a running stream: the stream ends or fails cleanly; the server serves on', async () => {
    const outcomes: string[] = [];
    for (let round = 0; round < 3; round++) {
      const it = ts.client.evaluate({ model: 'cnn', dataset: 'mnist', split: Split.SPLIT_TRAIN, limit: 20_000, batchSize: 128 });
      const first = await it.next();
      assert.ok(!first.done);
      assert.equal(await ts.client.unloadModel('cnn'), true);
      try {
        let result = -1;
        for await (const m of it) if (m.result) result = Number(m.result.count);
        assert.equal(result, 20_000, 'a stream that finishes evaluated every image');
        outcomes.push('finished');
      } catch (err) {
        const e = err as { code?: number; details?: string };
        assert.ok(typeof e.code === 'number', `a gRPC status, not ${String(err)}`);
        assert.notEqual(e.code, status.INTERNAL, `failed cleanly, not INTERNAL: ${e.details}`);
        outcomes.push(status[e.code]!);
      }
      await until(() => ts.server.app.rpc.calls.size === 0, 'the stream to end', 20_000);
      assert.deepEqual(await ts.client.listModels(), []);
      await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
      let count = -1;
      for await (const m of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 32 })) if (m.result) count = Number(m.result.count);
      assert.equal(count, 32, 'the reloaded model evaluates');
    }
    console.log(`      unload under a stream: ${outcomes.join(', ')}`);
  });
});
