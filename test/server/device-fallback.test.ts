/**
 * A GPU pod must not run on the CPU silently: when the requested GPU device is unavailable, the server stays
 * NOT_SERVING (gRPC health and /healthz say why) and counts the fallback, unless --allow-cpu-fallback is given.
 * The condition is real here: this machine has no CUDA libraries, so onnxruntime's CUDA provider fails to load.
 */
import * as assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server';

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

describe('server: a requested GPU device that is unavailable', function () {
  let ts: TestServer | undefined;

  afterEach(async function () {
    await ts?.close();
    ts = undefined;
  });

  it('keeps the server NOT_SERVING with the reason, and counts the fallback', async function () {
    ts = await startTestServer({ config: { device: 'cuda' } });
    const status = ts.server.app.engineStatuses().find((s) => s.kind === 'onnxruntime')!;
    if (status.backend === 'cuda') this.skip(); // a machine with a working CUDA provider cannot show this
    assert.equal(ts.server.health.isServing(), false);
    assert.match(ts.server.health.reason(), /device cuda was requested but is unavailable \(CUDA execution provider unavailable, using CPU: .+\); start with --allow-cpu-fallback/);
    const healthz = await get(ts.metricsUrl.replace('/metrics', '/healthz'));
    assert.equal(healthz.status, 503);
    assert.match(healthz.body, /device cuda was requested but is unavailable/);
    const metrics = (await get(ts.metricsUrl)).body;
    assert.match(metrics, /introspect_device_fallbacks_total\{engine="onnxruntime",requested="cuda"\} 1/);
    assert.match(metrics, /introspect_device_info\{engine="onnxruntime",device="cpu",backend="cpu"\} 1/);
  });

  it('serves on the CPU with --allow-cpu-fallback, still counting the fallback', async function () {
    ts = await startTestServer({ config: { device: 'cuda', allowCpuFallback: true } });
    const status = ts.server.app.engineStatuses().find((s) => s.kind === 'onnxruntime')!;
    if (status.backend === 'cuda') this.skip();
    assert.equal(ts.server.health.isServing(), true);
    assert.equal((await get(ts.metricsUrl.replace('/metrics', '/healthz'))).status, 200);
    assert.match((await get(ts.metricsUrl)).body, /introspect_device_fallbacks_total\{engine="onnxruntime",requested="cuda"\} 1/);
    assert.deepEqual(await ts.client.listModels(), [], 'the server answers');
  });

  it('a CPU server serves and reports its devices', async function () {
    ts = await startTestServer();
    assert.equal(ts.server.health.isServing(), true);
    const metrics = (await get(ts.metricsUrl)).body;
    assert.match(metrics, /introspect_device_info\{engine="onnxruntime",device="cpu",backend="cpu"\} 1/);
    assert.match(metrics, /introspect_device_info\{engine="tfjs",device="[^"]+",backend="[^"]+"\} 1/);
    assert.doesNotMatch(metrics, /introspect_device_fallbacks_total\{/);
  });
});
