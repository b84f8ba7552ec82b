/**
 * The metrics an operator runs on (issue 14, gap 8), over a real server: engine work timed by operation and
 * model (guided backprop too, not only forward), the wait for an onnxruntime worker, cache bytes against their
 * bounds, the memory budget, a client deadline counted as DEADLINE_EXCEEDED, and a bounded model label set.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { AttributionMethod } from '../../api/generated/introspect/v1/analysis';
import { Engine } from '../../api/generated/introspect/v1/common';
import { MAX_MODEL_LABELS, OTHER_MODELS, ServerMetrics } from '../../server/metrics';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { mnistInput, tensorOf } from '../rpc/support';

/** The value of the sample `name{labels…}` (all given labels match), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
  }
  return undefined;
}

describe('server: engine, wait, cache and deadline metrics', function () {
  this.timeout(120_000);
  let ts: TestServer;
  const metrics = async (): Promise<string> => (await fetch(ts.metricsUrl)).text();

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { workers: 1, intraOpThreads: 1 } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('times guided backprop and forward by engine, operation and model, on both engines', async () => {
    const input = { source: { $case: 'tensor' as const, value: tensorOf(mnistInput('test', 0), [1, 28, 28]) } };
    for (const engine of [Engine.ENGINE_ONNXRUNTIME, Engine.ENGINE_TFJS]) {
      await collect(ts.client.neuronImages({ model: 'cnn', input, layers: [{ layer: 0 }], engine }));
      await ts.client.predict({ model: 'cnn', images: tensorOf(mnistInput('test', 0), [28, 28, 1]), engine });
    }
    const text = await metrics();
    for (const engine of ['onnxruntime', 'tfjs']) {
      for (const operation of ['attribute', 'forward']) {
        const n = sample(text, 'introspect_engine_seconds_count', { engine, operation, model: 'cnn' });
        assert.ok(n !== undefined && n >= 1, `${engine} ${operation}: ${n}`);
      }
    }
  });

  it('reports the wait for an onnxruntime worker, cache bytes against their bounds and the memory budget', async () => {
    await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [0] }));
    const text = await metrics();
    const waits = sample(text, 'introspect_wait_seconds_count', { resource: 'engine' });
    assert.ok(waits !== undefined && waits >= 1, `waits ${waits}`);
    const modelBytes = sample(text, 'introspect_cache_bytes', { cache: 'models' })!;
    assert.ok(modelBytes > 33_000 * 4, `the loaded model's weights are held: ${modelBytes}`);
    assert.equal(sample(text, 'introspect_cache_capacity_bytes', { cache: 'models' }), ts.server.app.config.cacheBytes);
    assert.ok(sample(text, 'introspect_cache_bytes', { cache: 'averages' })! > 0, 'the class average is cached');
    assert.ok(sample(text, 'introspect_cache_capacity_bytes', { cache: 'similarity' })! > 0);
    assert.equal(sample(text, 'introspect_memory_budget_bytes'), ts.server.app.memory.budgetBytes);
  });

  it('counts a call whose client deadline passed as DEADLINE_EXCEEDED, not CANCELLED', async () => {
    const input = { source: { $case: 'tensor' as const, value: tensorOf(mnistInput('test', 1), [1, 28, 28]) } };
    const err = await grpcError(() =>
      collect(ts.client.neuronImages({ model: 'cnn', input, attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 2048 } }, { timeoutMs: 300 })),
    );
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    const method = { grpc_service: 'introspect.v1.AnalysisService', grpc_method: 'NeuronImages' };
    // the server learns of the deadline a moment after the client does
    for (let i = 0; i < 50 && sample(await metrics(), 'grpc_server_handled_total', { ...method, grpc_code: 'DEADLINE_EXCEEDED' }) === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const text = await metrics();
    assert.equal(sample(text, 'grpc_server_handled_total', { ...method, grpc_code: 'DEADLINE_EXCEEDED' }), 1);
    assert.equal(sample(text, 'grpc_server_handled_total', { ...method, grpc_code: 'CANCELLED' }), undefined);
  });

  it('keeps the model label set bounded', () => {
    const m = new ServerMetrics({ defaultMetrics: false });
    for (let i = 0; i < MAX_MODEL_LABELS; i++) assert.equal(m.modelLabel(`m${i}`), `m${i}`);
    assert.equal(m.modelLabel('one-too-many'), OTHER_MODELS);
    assert.equal(m.modelLabel('m0'), 'm0', 'a name seen before keeps its label');
  });
});
