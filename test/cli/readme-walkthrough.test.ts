/**
 * The README is executable documentation: its server command (section "Running the server") is started as
 * written, and every line of its CLI walk-through (section "CLI") runs through bash as written, each one
 * exiting 0. Two substitutions only, both of the environment and not of the commands: a free port instead of
 * 50051 (CI may run other servers), and $INTROSPECT_SHARED where the README says `../shared`. `introspect`
 * is a shim on PATH for `node dist/clients/cli/main.js`, what `npm link` installs. Runs from a temporary
 * copy-free working directory for its `out/` folders; needs the shared folder (pending otherwise).
 */
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { runProcess } from '../support/process';
import { SHARED, needShared } from '../support/shared';

const REPO = process.cwd();
const CLI = path.join(REPO, 'dist', 'clients', 'cli', 'main.js');

/** The lines of the first ```sh block after the heading `heading`. */
function shBlock(readme: string, heading: string): string[] {
  const at = readme.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README has no heading '${heading}'`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `no sh block after '${heading}'`);
  return m[1]!.split('\n').filter((l) => l.trim() !== '');
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('README: the CLI walk-through, as written, against the README\'s server command', function () {
  this.timeout(20 * 60_000);
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const walk = shBlock(readme, '## CLI').filter((l) => l.startsWith('introspect '));
  let server: ChildProcess | undefined;
  let serverLog = '';
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const serverLine = shBlock(readme, '## Running the server').find((l) => l.startsWith('node dist/server/main.js'));
    assert.ok(serverLine, 'the README starts the server with node dist/server/main.js');
    assert.match(serverLine, /--port 50051/);
    const port = await freePort();
    const command = serverLine.replace('--port 50051', `--port ${port}`).replaceAll('../shared/', `${SHARED}/`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-walk-'));
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'introspect'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`, { mode: 0o755 });
    env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, INTROSPECT_SERVER: `127.0.0.1:${port}`, INTROSPECT_METRICS_PORT: 'off' };
    server = spawn('bash', ['-c', `exec ${command}`], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server.stdout!.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
    for (let i = 0; ; i++) {
      const r = await runProcess('bash', ['-c', 'introspect models list'], { env });
      if (r.code === 0) break;
      assert.ok(i < 120 && server.exitCode === null, `the server did not come up: ${r.stderr}\n${serverLog}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });

  after(async function () {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has a walk-through that loads every model it uses', () => {
    assert.ok(walk.length >= 10, `${walk.length} lines`);
    const loaded = walk.flatMap((l) => /^introspect models load (\S+)/.exec(l)?.slice(1) ?? []);
    for (const l of walk) {
      const m = /^introspect (?:evaluate|averages|confidence|similarity|examples|sanity|prune|probes|neurons) (\S+)/.exec(l);
      if (m) assert.ok(loaded.includes(m[1]!), `'${l}' uses model ${m[1]} which the walk-through never loads`);
    }
  });

  it('runs every line with exit code 0, writing what it says it writes', async function () {
    for (const line of walk) {
      const r = await runProcess('bash', ['-c', `cd '${dir}' && ${line}`], { env });
      assert.equal(r.code, 0, `${line}\nexit ${r.code}\n${r.stderr}\n${r.stdout.slice(0, 2000)}\n${serverLog.slice(-2000)}`);
      assert.ok(r.stdout.trim() !== '' || /--out /.test(line), `${line}: printed nothing`);
    }
    for (const f of ['out/report/report.html', 'out/report/summary.json']) assert.ok(fs.existsSync(path.join(dir, f)), f);
    assert.ok(fs.readdirSync(path.join(dir, 'out', 'neurons')).some((f) => f.endsWith('.png')), 'neuron PNG grids');
    assert.ok(fs.readdirSync(path.join(dir, 'out', 'averages')).some((f) => f.endsWith('.png')), 'class-average PNGs');
  });
});
