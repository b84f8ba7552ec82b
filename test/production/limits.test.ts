/**
 * Limits over a real loopback server: the bound on concurrent heavy streams (RESOURCE_EXHAUSTED
 * naming it, slots freed by cancellation, light calls unaffected, default 2 × workers), the
 * configurable largest received message, and the upload limit.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { status } from '@grpc/grpc-js';
import { AttributionMethod } from '../../api/generated/introspect/v1/analysis';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { apiMethods } from '../../api/methods';
import { HEAVY_METHODS } from '../../server/limits';
import { BUNDLED_MODEL, grpcError, startTestServer, type TestServer } from '../support/server';
import { counter, until } from '../rpc/support';

describe('production: heavy-stream limit', function () {
  this.timeout(90_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxHeavyStreams: 2 } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  /** A long NeuronImages stream (integrated gradients, many steps) with its first message read. */
  async function longStream(): Promise<AsyncGenerator<unknown>> {
    const it = ts.client.neuronImages({
      model: 'cnn',
      input: { source: { $case: 'sample', value: { dataset: 'mnist', index: 0 } } },
      attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 256 },
    });
    const first = await it.next();
    assert.ok(!first.done, 'the long stream sent a first message');
    return it;
  }

  it('names the ten heavy methods of the API: eight server streams, ConfidenceMatrix and UploadModel', () => {
    const api = new Map(apiMethods().map((m) => [m.path, m]));
    assert.equal(HEAVY_METHODS.size, 10);
    for (const p of HEAVY_METHODS) assert.ok(api.has(p), `${p} is a method of the API`);
    const streams = [...HEAVY_METHODS].filter((p) => api.get(p)?.responseStream);
    assert.equal(streams.length, 8);
    assert.ok(api.get('/introspect.v1.ModelService/UploadModel')?.requestStream);
  });

  it('refuses a heavy stream beyond the limit, frees the slot on cancel, leaves light calls alone', async () => {
    const a = await longStream();
    const b = await longStream();
    assert.equal(ts.server.heavyStreams.active, 2);
    const refused = await grpcError(async () => {
      for await (const _ of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 10 })) void _;
    });
    assert.equal(refused.code, status.RESOURCE_EXHAUSTED);
    assert.match(refused.details, /Evaluate: 2 heavy streams are already running \(the limit set by --max-heavy-streams\)/);
    assert.equal(ts.server.heavyStreams.refused, 1);
    const text = await (await fetch(ts.metricsUrl)).text();
    assert.match(text, /^introspect_heavy_streams_active 2$/m);
    assert.match(text, /^introspect_heavy_streams_limit 2$/m);
    assert.match(text, /^introspect_heavy_streams_refused_total 1$/m);
    assert.equal(counter(text, 'grpc_server_handled_total', { grpc_type: 'server_stream', grpc_service: 'introspect.v1.ModelService', grpc_method: 'Evaluate', grpc_code: 'RESOURCE_EXHAUSTED' }), 1);
    // Light calls still go through.
    assert.equal((await ts.client.listModels()).length, 1);
    assert.equal((await ts.client.getDataset('mnist')).name, 'mnist');
    // Cancelling one stream frees its slot.
    await a.return(undefined);
    await until(() => ts.server.heavyStreams.active === 1, 'the cancelled stream to release its slot', 10_000);
    let count = -1;
    for await (const m of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 10 })) count = Number(m.result?.count ?? count);
    assert.equal(count, 10);
    await b.return(undefined);
    await until(() => ts.server.heavyStreams.active === 0 && ts.server.app.rpc.calls.size === 0, 'every slot and call to be released', 10_000);
  });

  it('a stream that ends normally or fails also frees its slot', async () => {
    for (let i = 0; i < 5; i++) {
      for await (const _ of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 4 })) void _;
      const e = await grpcError(async () => {
        for await (const _ of ts.client.evaluate({ model: 'ghost', dataset: 'mnist' })) void _;
      });
      assert.equal(e.code, status.NOT_FOUND);
    }
    assert.equal(ts.server.heavyStreams.active, 0);
  });

  it('defaults to 2 × the onnxruntime workers', async () => {
    const other = await startTestServer({ config: { workers: 2 } });
    try {
      assert.equal(other.server.heavyStreams.max, 4);
    } finally {
      await other.close();
    }
  });
});

describe('production: message and upload size limits', function () {
  this.timeout(60_000);
  let ts: TestServer;
  const receive = 64 * 1024;
  const upload = 100 * 1024;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxReceiveBytes: receive, maxUploadBytes: upload } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
  });
  after(async () => {
    await ts?.close();
  });

  const images = (n: number) => ({ shape: [n, 28, 28, 1], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.alloc(n * 784, 7) });

  it('refuses a message larger than --max-receive-bytes and serves smaller ones', async () => {
    const ok = await ts.client.predict({ model: 'cnn', images: images(10) });
    assert.equal(ok.predictions.length, 10);
    const big = await grpcError(() => ts.client.predict({ model: 'cnn', images: images(200) })); // 156,800 bytes
    assert.equal(big.code, status.RESOURCE_EXHAUSTED);
    assert.match(big.details, /message larger than max \(156\d{3} vs\.? 65536\)/i);
    assert.equal((await ts.client.listModels()).length, 1, 'the server serves on');
  });

  it('refuses an upload larger than --max-upload-bytes, in chunks each under the message limit', async () => {
    const bytes = fs.readFileSync(BUNDLED_MODEL); // 137 KB > 100 KiB
    const e = await grpcError(() => ts.client.uploadModel({ name: 'up' }, bytes, { chunkBytes: 32 * 1024 }));
    assert.equal(e.code, status.RESOURCE_EXHAUSTED);
    assert.match(e.details, new RegExp(`more than the server's upload limit of ${upload} bytes`));
    assert.equal((await ts.client.listModels()).length, 1);
  });
});
