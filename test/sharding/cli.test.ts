/**
 * `introspect similarity|prune --servers A,B` (run in this process, the binary's code path) print
 * what the same command prints against one server; with every server down the error names the shards.
 */
import * as assert from 'node:assert/strict';
import { runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { BUNDLED_MODEL, startTestServer, type TestServer } from '../support/server';

async function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readStdin: async () => '', stderrIsTty: false };
  const code = await runCli(args, io, {});
  return { code, stdout, stderr };
}

/** The JSON lines of a run, without the `cached` flag (a repeat on one server is served from its cache). */
const jsonLines = (s: string): unknown[] =>
  s.trim().split('\n').map((l) => {
    const { cached: _cached, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });

describe('sharding: the CLI\'s --servers', function () {
  this.timeout(120_000);
  let servers: TestServer[] = [];

  before(async () => {
    servers = await Promise.all([0, 1].map(() => startTestServer({ models: [BUNDLED_MODEL] })));
    for (const s of servers) {
      await s.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
      await s.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
    }
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  const both = (): string => `--servers=${servers.map((s) => s.address).join(',')}`;

  it('similarity --servers prints the per-(class, layer) objects one server prints', async () => {
    const args = ['similarity', 'cnn', 'mnist', '--classes', '0,6', '--layers', '2,1', '--split', 'test', '--json'];
    const one = await cli([`--server=${servers[0]!.address}`, ...args]);
    const many = await cli([...args, both()]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(many.code, 0, many.stderr);
    const lines = jsonLines(many.stdout);
    assert.equal(lines.length, 5, '4 (class, layer) objects, then the summary');
    assert.ok((lines[4] as Record<string, unknown>).summary);
    assert.deepEqual(lines, jsonLines(one.stdout));
  });

  it('prune --servers prints the baseline and results one server prints', async () => {
    const args = ['prune', 'cnn', 'mnist', '--layers', '1', '--criteria', 'l1,random', '--fractions', '0.3', '--seeds', '2', '--limit', '200', '--json'];
    const one = await cli([`--server=${servers[1]!.address}`, ...args]);
    const many = await cli([...args, both()]);
    assert.equal(one.code, 0, one.stderr);
    assert.equal(many.code, 0, many.stderr);
    assert.equal(jsonLines(many.stdout).length, 3);
    assert.deepEqual(jsonLines(many.stdout), jsonLines(one.stdout));
  });

  it('with every server down exits 1 naming the shards that failed', async () => {
    const gone = await startTestServer();
    await gone.close();
    const r = await cli(['prune', 'cnn', 'mnist', '--layers', '0', '--criteria', 'l1', `--servers=${gone.address}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /UNAVAILABLE: 1 of 1 shards failed after \d+ attempts: layer 0 PRUNE_CRITERION_L1/);
    assert.match(r.stderr, /retrying layer 0 PRUNE_CRITERION_L1/);
  });

  it('--replicas without --servers is a usage error', async () => {
    const r = await cli(['prune', 'cnn', 'mnist', '--replicas', '3']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--replicas goes with --servers/);
  });
});
