/**
 * Stalled clients (issue 14, gap 4) over a real loopback server: two UploadModel streams that send a
 * header and then nothing used to hold both heavy slots until their TCP connections closed. Now each is
 * ended with DEADLINE_EXCEEDED after the (here short) stream idle timeout, its slot is released, and an
 * analysis call gets through. Keepalive and connection-age options reach the gRPC server.
 */
import * as assert from 'node:assert/strict';
import { status, type ServiceError } from '@grpc/grpc-js';
import { UploadModelRequest } from '../../api/generated/introspect/v1/models';
import { defaultConfig, parseConfig } from '../../server/config';
import { grpcServerOptions } from '../../server/grpc-options';
import { BUNDLED_MODEL, startTestServer, type TestServer } from '../support/server';
import { until } from '../rpc/support';
import { rawClient } from './support';

const IDLE_MS = 1500;

/** An UploadModel stream that sends its header and then nothing; resolves with its final status. */
function stalledUpload(address: string, name: string): { done: Promise<ServiceError | null>; close(): void } {
  const client = rawClient(address);
  const serialize = (m: UploadModelRequest): Buffer => Buffer.from(UploadModelRequest.encode(m).finish());
  const done = new Promise<ServiceError | null>((resolve) => {
    const call = client.makeClientStreamRequest<UploadModelRequest, Buffer>('/introspect.v1.ModelService/UploadModel', serialize, (b: Buffer) => b, (err) => resolve(err));
    call.on('error', () => {});
    call.write({ part: { $case: 'header', value: { name, sizeBytes: 100_000, classNames: [], format: 0, preprocessing: undefined } } });
    // ... and nothing more: no chunk, no end.
  });
  return { done, close: () => client.close() };
}

describe('production: stalled clients release their slots', function () {
  this.timeout(120_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxHeavyStreams: 2, streamIdleMs: IDLE_MS } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('ends two idle uploads after the stream idle timeout, frees both heavy slots, then serves an analysis call', async () => {
    const started = Date.now();
    const a = stalledUpload(ts.address, 'a');
    const b = stalledUpload(ts.address, 'b');
    try {
      await until(() => ts.server.heavyStreams.active === 2, 'both uploads to hold a heavy slot', 10_000);
      const [ea, eb] = await Promise.all([a.done, b.done]);
      const waited = Date.now() - started;
      for (const e of [ea, eb]) {
        assert.equal(e?.code, status.DEADLINE_EXCEEDED, String(e));
        assert.match(e!.details, new RegExp(`^UploadModel: no message from the client for ${IDLE_MS} ms \\(the limit set by --stream-idle-timeout\\)`));
      }
      assert.ok(waited >= IDLE_MS, `not ended before the timeout (${waited} ms)`);
      await until(() => ts.server.heavyStreams.active === 0 && ts.server.app.rpc.calls.size === 0, 'the slots to be released', 10_000);
      console.log(`      two stalled uploads ended ${waited} ms after they started (idle timeout ${IDLE_MS} ms)`);
      let count = -1;
      for await (const m of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 20 })) count = Number(m.result?.count ?? count);
      assert.equal(count, 20);
      assert.equal((await ts.client.listModels()).map((m) => m.name).join(','), 'cnn', 'nothing half-uploaded was registered');
    } finally {
      a.close();
      b.close();
    }
  });

  it('an upload that keeps sending within the timeout is not cut', async () => {
    const bytes = await import('node:fs').then((fs) => fs.readFileSync(BUNDLED_MODEL));
    // 137 kB in 16 kB chunks: every message well within the timeout.
    const info = await ts.client.uploadModel({ name: 'steady' }, bytes, { chunkBytes: 16 * 1024 });
    assert.equal(info.name, 'steady');
    await ts.client.unloadModel('steady');
  });

  it('configures the idle timeout, keepalive and connection age by flags and environment, with defaults', () => {
    const d = parseConfig([], {});
    assert.ok(!d.help);
    assert.equal(d.config.streamIdleMs, 30_000);
    assert.deepEqual(grpcServerOptions(d.config), {
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.keepalive_time_ms': 60_000,
      'grpc.keepalive_timeout_ms': 20_000,
      'grpc.max_connection_age_ms': 15 * 60_000,
      'grpc.max_connection_age_grace_ms': 30 * 60_000,
    });
    const p = parseConfig(['--stream-idle-timeout', '5s', '--keepalive-time=10s', '--max-connection-age', 'off'], {
      INTROSPECT_KEEPALIVE_TIMEOUT: '2s',
      INTROSPECT_MAX_CONNECTION_AGE_GRACE: '90s',
    });
    assert.ok(!p.help);
    assert.equal(p.config.streamIdleMs, 5000);
    const o = grpcServerOptions(p.config);
    assert.equal(o['grpc.keepalive_time_ms'], 10_000);
    assert.equal(o['grpc.keepalive_timeout_ms'], 2000);
    assert.equal(o['grpc.max_connection_age_ms'], undefined);
    assert.equal(o['grpc.max_connection_age_grace_ms'], 90_000);
    assert.equal(parseConfig(['--stream-idle-timeout', 'off'], {}).help === false && grpcServerOptions({ ...defaultConfig(), maxConnectionAgeGraceMs: undefined })['grpc.max_connection_age_grace_ms'], undefined);
    assert.throws(() => parseConfig(['--keepalive-time', '0s'], {}), /must be longer than 0/);
  });

  it('with a short maximum connection age and grace, calls keep succeeding across reconnections', async () => {
    const aged = await startTestServer({ models: [BUNDLED_MODEL], config: { maxConnectionAgeMs: 500, maxConnectionAgeGraceMs: 500 } });
    try {
      await aged.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
      for (let i = 0; i < 4; i++) {
        assert.equal((await aged.client.listModels()).length, 1);
        await new Promise((r) => setTimeout(r, 400));
      }
    } finally {
      await aged.close();
    }
  });
});
