/**
 * What a newcomer hit with the `introspect` CLI (issue 15), against a real server: `| head` ends
 * quietly, an unreachable server says what to try, long calls print plain progress lines when stderr is
 * not a terminal (and nothing with --quiet), one split default stated in every --help, class names in
 * `examples`, a BN column that is never blank, and `probes --iterations` (with `--epochs` deprecated).
 */
import * as assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { COMMANDS, runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { BN_NOTE } from '../../clients/cli/commands/models';
import { DEFAULT_SPLIT } from '../../clients/cli/split';
import { PLAIN_EVERY_MS, progressLines } from '../../clients/cli/progress';
import { Split } from '../../api/generated/introspect/v1/common';
import { runProcess, type Run } from '../support/process';
import { BUNDLED_MODEL, collect, startTestServer, type TestServer } from '../support/server';

const CLI = path.resolve(__dirname, '..', '..', 'clients', 'cli', 'main.js');

async function cli(args: string[], env: NodeJS.ProcessEnv = {}, stderrIsTty = false): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readStdin: async () => '', stderrIsTty };
  const code = await runCli(args, io, env);
  return { code, stdout, stderr };
}

const jsonLines = (s: string): Array<Record<string, unknown>> =>
  s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('cli: progress lines (no terminal)', () => {
  it('prints the first update, one line per tenth or per PLAIN_EVERY_MS, and the last count', () => {
    let t = 0;
    const lines: string[] = [];
    const p = progressLines('job', (l) => lines.push(l), () => t);
    for (let done = 1; done <= 1000; done++) {
      t += 1; // 1 s in all: the 10% steps decide
      p.update(done, 1000);
    }
    p.done();
    assert.deepEqual(
      lines.map((l) => l.split(',')[0]),
      ['job: 1/1000 (0%)', ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => `job: ${k * 100}/${1000} (${k * 10}%)`)],
    );
    assert.equal(lines.at(-1), 'job: 1000/1000 (100%), 1.0 s\n');

    // Slow and fine-grained: time decides; the final count is printed once at the end.
    const slow: string[] = [];
    t = 0;
    const q = progressLines('slow', (l) => slow.push(l), () => t);
    for (let done = 1; done <= 50; done++) {
      t += 500;
      q.update(done, 10_000);
    }
    q.done();
    assert.equal(slow.length, 1 + Math.floor((50 * 500 - 500) / PLAIN_EVERY_MS) + 1);
    assert.match(slow.at(-1)!, /^slow: 50\/10000 \(1%\), 25\.0 s\n$/);
  });
});

describe('cli: a newcomer\'s first hour', function () {
  this.timeout(180_000);
  let ts: TestServer;
  let server: string;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    server = `--server=${ts.address}`;
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('piped into head, exits 0 without a stack trace (EPIPE)', async () => {
    const node = JSON.stringify(process.execPath);
    const script = `set -o pipefail; ${node} ${JSON.stringify(CLI)} ${server} --json datasets samples mnist --limit 2000 | head -n 1 > /dev/null`;
    const r = await runProcess('bash', ['-c', script]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
  });

  it('names the address it tried and what to try when no server answers', async () => {
    const port = await closedPort();
    const r = await cli([`--server=127.0.0.1:${port}`, 'models', 'list']);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, new RegExp(`cannot reach a cnn-introspect server at 127\\.0\\.0\\.1:${port} \\(--server\\)`));
    assert.match(r.stderr, /npm start/);
    assert.match(r.stderr, /--server HOST:PORT or INTROSPECT_SERVER=HOST:PORT/);
    assert.match(r.stderr, /UNAVAILABLE/);

    const fromEnv = await cli(['--json', 'models', 'list'], { INTROSPECT_SERVER: `127.0.0.1:${port}` });
    assert.equal(fromEnv.code, 3);
    const err = JSON.parse(fromEnv.stderr.trim()) as { error: { code: string; server: string; hint: string } };
    assert.equal(err.error.code, 'UNAVAILABLE');
    assert.equal(err.error.server, `127.0.0.1:${port}`);
    assert.match(err.error.hint, /\(\$INTROSPECT_SERVER\)/);
  });

  it('prints plain progress lines on stderr when it is not a terminal; --quiet silences them', async () => {
    const args = [server, 'evaluate', 'cnn', 'mnist', '--limit', '300', '--batch-size', '100'];
    const plain = await cli(args);
    assert.equal(plain.code, 0, plain.stderr);
    const lines = plain.stderr.trim().split('\n');
    for (const l of lines) assert.match(l, /^evaluate: \d+\/300 \(\d+%\), \d+\.\d s$/);
    assert.match(lines.at(-1)!, /^evaluate: 300\/300 \(100%\)/);
    assert.doesNotMatch(plain.stderr, /\r/);
    assert.match(plain.stdout, /^accuracy /);

    const quiet = await cli([...args, '--quiet']);
    assert.equal(quiet.code, 0);
    assert.equal(quiet.stderr, '');
    assert.match(quiet.stdout, /^accuracy /);

    const tty = await cli(args, {}, true);
    assert.match(tty.stderr, /^\revaluate \[/, 'a bar redrawn in place on a terminal');
  });

  it('has one split default (test), stated in the --help of every command that takes --split, and the server agrees', async () => {
    assert.equal(DEFAULT_SPLIT, 'test');
    let withSplit = 0;
    for (const c of COMMANDS) {
      const h = await cli([...c.spec.name.split(' '), '--help']);
      assert.doesNotMatch(h.stdout, /--split.*default train/, c.spec.name);
      if (!('split' in c.spec.flags)) continue;
      withSplit++;
      assert.match(h.stdout, /--split train\|test\s+which split the images come from \(default test, for every command\)/, c.spec.name);
    }
    assert.ok(withSplit >= 9, `${withSplit} commands take --split`);

    // Class averages with the split unspecified are the test split's (they were the train split's).
    const unspecified = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [4] }));
    const test = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [4], average: { split: Split.SPLIT_TEST } }));
    const train = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [4], average: { split: Split.SPLIT_TRAIN } }));
    assert.equal(unspecified[0]!.imagesUsed, test[0]!.imagesUsed);
    assert.notEqual(unspecified[0]!.imagesUsed, train[0]!.imagesUsed);
    // And the CLI without --split asks for the same.
    const averages = await cli([server, '--json', 'averages', 'cnn', 'mnist', '--classes', '4', '--out', path.join(ts.tmp, 'avg')]);
    assert.equal(averages.code, 0, averages.stderr);
    assert.equal(jsonLines(averages.stdout)[0]!.imagesUsed, test[0]!.imagesUsed);
  });

  it('examples shows class names where the data set has them', async () => {
    const names = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    await ts.client.registerDataset({ name: 'named', path: 'builtin:mnist', classNames: names });
    const args = ['examples', 'cnn', 'named', '--layer', '1', '--channels', '3', '--k', '4', '--limit', '100'];
    const rpc = await collect(ts.client.datasetExamples({ model: 'cnn', dataset: 'named', layer: 1, channels: [3], k: 4, limit: 100 }));
    const text = await cli([server, ...args]);
    assert.equal(text.code, 0, text.stderr);
    const rows = text.stdout.trim().split('\n');
    assert.match(rows[0]!, /^CHANNEL\s+RANK\s+INDEX\s+CLASS\s+ACTIVATION$/);
    rpc.forEach((e, i) => assert.match(rows[i + 1]!, new RegExp(`^3\\s+${e.rank}\\s+${e.index}\\s+${names[e.label]} \\(${e.label}\\)\\s`)));
    const json = jsonLines((await cli([server, '--json', ...args])).stdout);
    assert.deepEqual(json.map((j) => j.className), rpc.map((e) => names[e.label]));
    // Digits named by their own numbers print once.
    const plain = await cli([server, 'examples', 'cnn', 'mnist', '--layer', '1', '--channels', '3', '--k', '1', '--limit', '100']);
    assert.match(plain.stdout.split('\n')[1]!, /^3\s+0\s+\d+\s+\d\s+-?\d/);
  });

  it('models info never leaves the BN column blank and says what it can tell', async () => {
    const r = await cli([server, 'models', 'info', 'cnn']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const head = lines.findIndex((l) => /^LAYER\s+NAME\s+CHANNELS\s+OUTPUT\s+BN\s+ACTIVATION$/.test(l));
    assert.ok(head >= 0, r.stdout);
    const rows = lines.slice(head + 1, head + 4);
    for (const row of rows) assert.match(row, /^\d+\s+\S+\s+\d+\s+\[[^\]]+\]\s+(folded|–)\s+\S+$/, row);
    assert.ok(r.stdout.includes(BN_NOTE));
  });

  it('probes --iterations sets the L-BFGS iterations; --epochs still works, with a warning', async () => {
    const args = [server, '--json', 'probes', 'cnn', 'mnist', '--layers', '1', '--train-limit', '100', '--test-limit', '50'];
    const it = await cli([...args, '--iterations', '3']);
    assert.equal(it.code, 0, it.stderr);
    assert.doesNotMatch(it.stderr, /deprecated/);
    const old = await cli([...args, '--epochs', '3']);
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stderr, /--epochs is deprecated .* use --iterations/);
    assert.deepEqual(jsonLines(old.stdout), jsonLines(it.stdout));
    const longer = await cli([...args, '--iterations', '40']);
    assert.notDeepEqual(jsonLines(longer.stdout), jsonLines(it.stdout), 'the flag reaches the server');
    const both = await cli([...args, '--iterations', '3', '--epochs', '3']);
    assert.equal(both.code, 2);
    const help = await cli(['probes', '--help']);
    assert.match(help.stdout, /--iterations N\s+L-BFGS iterations fitting each head/);
  });
});
