/** Health checks, reflection and the Prometheus endpoint of a real server. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { credentials, loadPackageDefinition, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { grpcError, startTestServer, type TestServer } from '../support/server';

type Ctor = new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client;

function healthClient(address: string): Client & Record<string, (...args: unknown[]) => unknown> {
  const def = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { health: { v1: { Health: Ctor } } } };
  return new pkg.grpc.health.v1.Health(address, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
}

function check(client: Client & Record<string, (...args: unknown[]) => unknown>, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.Check({ service }, (err: ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))),
  );
}

/** Lists services through server reflection v1 (a bidi stream: one request, one response). */
function reflectionListServices(address: string): Promise<string[]> {
  const reflectionProto = path.join(
    path.dirname(require.resolve('@grpc/reflection/package.json')),
    'build/proto/grpc/reflection/v1/reflection.proto',
  );
  const def = loadSync(reflectionProto, { keepCase: true, defaults: true, oneofs: true });
  const pkg = loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: Ctor } } } };
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure()) as Client &
    Record<string, () => NodeJS.ReadWriteStream & { end(): void; write(x: unknown): void }>;
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (res: { list_services_response?: { service: Array<{ name: string }> } }) => {
      resolve((res.list_services_response?.service ?? []).map((s) => s.name));
      call.end();
      client.close();
    });
    call.on('error', reject);
    call.write({ list_services: '' });
  });
}

describe('server: health, reflection, metrics', function () {
  this.timeout(60_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer();
  });
  after(async () => {
    await ts?.close();
  });

  it('answers grpc.health.v1 Check for the server and each service', async () => {
    const health = healthClient(ts.address);
    try {
      assert.equal(await check(health, ''), 'SERVING');
      for (const s of ['introspect.v1.ModelService', 'introspect.v1.DatasetService', 'introspect.v1.AnalysisService']) {
        assert.equal(await check(health, s), 'SERVING', s);
      }
      const err = await grpcError(() => check(health, 'no.such.Service'));
      assert.equal(err.code, status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('lists the API, health and reflection services through reflection', async () => {
    const services = await reflectionListServices(ts.address);
    for (const s of ['introspect.v1.ModelService', 'introspect.v1.DatasetService', 'introspect.v1.AnalysisService', 'grpc.health.v1.Health']) {
      assert.ok(services.includes(s), `${s} missing from ${services.join(', ')}`);
    }
  });

  it('counts calls by method and code on /metrics, with the domain and Node metrics', async () => {
    await ts.client.listModels();
    await ts.client.listModels();
    const notFound = await grpcError(() => ts.client.getModel('missing'));
    assert.equal(notFound.code, status.NOT_FOUND);
    const unknownModel = await grpcError(() => ts.client.confidenceMatrix({ model: 'x' }));
    assert.equal(unknownModel.code, status.NOT_FOUND);
    assert.match(unknownModel.details, /'x'/);

    const res = await fetch(ts.metricsUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const value = (name: string, labels: Record<string, string>): number | undefined => {
      for (const line of text.split('\n')) {
        if (!line.startsWith(name + '{')) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').pop());
      }
      return undefined;
    };
    const models = { grpc_service: 'introspect.v1.ModelService' };
    assert.equal(value('grpc_server_handled_total', { ...models, grpc_method: 'ListModels', grpc_code: 'OK' }), 2);
    assert.equal(value('grpc_server_handled_total', { ...models, grpc_method: 'GetModel', grpc_code: 'NOT_FOUND' }), 1);
    assert.equal(
      value('grpc_server_handled_total', { grpc_service: 'introspect.v1.AnalysisService', grpc_method: 'ConfidenceMatrix', grpc_code: 'NOT_FOUND' }),
      1,
    );
    assert.equal(value('grpc_server_started_total', { ...models, grpc_method: 'ListModels', grpc_type: 'unary' }), 2);
    assert.equal(value('grpc_server_msg_sent_total', { ...models, grpc_method: 'ListModels' }), 2);
    assert.equal(value('grpc_server_handling_seconds_count', { ...models, grpc_method: 'ListModels' }), 2);
    assert.match(text, /^introspect_models_loaded 0$/m);
    for (const name of ['introspect_cache_hits_total', 'introspect_cache_misses_total', 'introspect_images_computed_total', 'introspect_engine_seconds']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.match(text, /^process_cpu_seconds_total /m);
    assert.match(text, /^nodejs_eventloop_lag_seconds /m);

    const healthz = await fetch(ts.metricsUrl.replace('/metrics', '/healthz'));
    assert.equal(healthz.status, 200);
  });
});
