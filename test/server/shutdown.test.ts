/**
 * Graceful shutdown: health turns NOT_SERVING, a running stream finishes within the grace period,
 * one still running after it is cancelled; the process exits 0 on SIGTERM.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { credentials, loadPackageDefinition, status, type Client } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { IntrospectClient } from '../../clients/client';
import type { Sample } from '../../api/generated/introspect/v1/datasets';
import { startTestServer } from '../support/server';

/** MNIST train samples: enough bytes (~4 MB) that a client that stops reading stalls the server stream. */
const SAMPLES = 5000;

/** Opens a GetSamples stream and reads its first message; the rest waits until the caller reads on. */
async function openStream(client: IntrospectClient): Promise<{ iterator: AsyncIterator<Sample>; first: Sample }> {
  const iterator = client.getSamples({ dataset: 'mnist', split: 1, limit: SAMPLES })[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.ok(!first.done);
  return { iterator, first: first.value };
}

/** Health statuses of the whole server as a Watch stream reports them. */
function watchHealth(address: string): { statuses: string[]; close(): void } {
  const def = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const pkg = loadPackageDefinition(def) as unknown as {
    grpc: { health: { v1: { Health: new (a: string, c: ReturnType<typeof credentials.createInsecure>) => Client } } };
  };
  const client = new pkg.grpc.health.v1.Health(address, credentials.createInsecure()) as Client & {
    Watch(req: { service: string }): NodeJS.ReadableStream & { cancel(): void };
  };
  const statuses: string[] = [];
  const call = client.Watch({ service: '' });
  call.on('data', (m: { status: string }) => statuses.push(m.status));
  call.on('error', () => {});
  return {
    statuses,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** Polls until `cond` holds (fails after 30 s). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(cond(), 'condition not reached in 30 s');
}

async function drain(iterator: AsyncIterator<Sample>): Promise<Sample[]> {
  const rest: Sample[] = [];
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) rest.push(r.value);
  return rest;
}

describe('server: graceful shutdown', function () {
  this.timeout(120_000);

  it('lets a running stream finish within the grace period', async () => {
    const ts = await startTestServer();
    try {
      await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
      const watch = watchHealth(ts.address);
      const { iterator, first } = await openStream(ts.client);
      assert.equal(ts.server.app.rpc.calls.size, 1, 'the stream is in flight');
      await until(() => watch.statuses.length > 0);
      assert.deepEqual(watch.statuses, ['SERVING']);
      const closed = ts.server.close(60_000);
      assert.equal(ts.server.health.isServing(), false, 'NOT_SERVING while draining');
      await until(() => watch.statuses.length > 1);
      assert.deepEqual(watch.statuses, ['SERVING', 'NOT_SERVING'], 'watchers hear NOT_SERVING');
      assert.ok(ts.server.app.rpc.calls.size === 1, 'while the stream is still running');
      const rest = await drain(iterator);
      watch.close();
      assert.equal(1 + rest.length, SAMPLES);
      assert.equal(rest.at(-1)!.progress!.done, SAMPLES);
      assert.equal(rest.at(-1)!.index, first.index + SAMPLES - 1);
      await closed;
      assert.equal(ts.server.app.rpc.calls.size, 0);
    } finally {
      await ts.close();
    }
  });

  it('cancels a stream still running when the grace period ends', async () => {
    const ts = await startTestServer();
    try {
      await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
      const { iterator } = await openStream(ts.client);
      await ts.server.close(200);
      const err = await drain(iterator).then(
        () => assert.fail('the stream should have been cancelled'),
        (e: { code: number; details: string }) => e,
      );
      assert.equal(status[err.code], 'CANCELLED', err.details);
    } finally {
      await ts.close();
    }
  });

  it('on SIGTERM the process drains a running stream and exits 0', async () => {
    const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-main-'));
    const main = path.resolve(__dirname, '..', '..', 'server', 'main.js');
    const child = spawn(
      process.execPath,
      [main, '--host', '127.0.0.1', '--port', '0', '--metrics-port', 'off', '--model-root', tmp, '--data-root', tmp, '--workers', '1', '--threads', '1', '--grace-period', '60s'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const lines: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let client: IntrospectClient | undefined;
    try {
      const port = await new Promise<number>((resolve, reject) => {
        readline.createInterface({ input: child.stderr! }).on('line', (line) => {
          lines.push(line);
          const rec = JSON.parse(line) as { msg: string; port?: number };
          if (rec.msg === 'server listening') resolve(rec.port!);
        });
        child.on('exit', (code) => reject(new Error(`server exited (${code}) before listening:\n${lines.join('\n')}`)));
      });
      client = new IntrospectClient(`127.0.0.1:${port}`);
      await client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
      const { iterator } = await openStream(client);
      child.kill('SIGTERM');
      const rest = await drain(iterator);
      assert.equal(1 + rest.length, SAMPLES);
      assert.equal(await exited, 0);
      const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
      for (const m of ['shutting down', 'draining', 'server stopped']) assert.ok(msgs.includes(m), `log lacks '${m}': ${msgs.join(' | ')}`);
    } finally {
      client?.close();
      if (child.exitCode === null) child.kill('SIGKILL');
      await fs.promises.rm(tmp, { recursive: true, force: true });
    }
  });
});
