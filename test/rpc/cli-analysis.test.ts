/**
 * The analysis commands of the `introspect` CLI (run in this process, the code path of the binary)
 * against a real server, and `npm run demo`'s script spawned as a process. Outputs are checked
 * against the RPC answers and the files' own contents (PNG sizes, JSON fields, the report's sections).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { Split } from '../../api/generated/introspect/v1/common';
import { runProcess, type Run } from '../support/process';
import { BUNDLED_MODEL, collect, startTestServer, type TestServer } from '../support/server';
import { floats, maxAbsDiff } from './support';

async function cli(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), readStdin: async () => '', stderrIsTty: false };
  const code = await runCli(args, io, {});
  return { code, stdout, stderr };
}

const jsonLines = (s: string): Array<Record<string, unknown>> =>
  s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

const readJson = (file: string): Record<string, unknown> => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;

const pngSize = (file: string): [number, number] => {
  const p = PNG.sync.read(fs.readFileSync(file));
  return [p.width, p.height];
};

describe('cli: analysis commands and the demo', function () {
  this.timeout(180_000);
  let ts: TestServer;
  let server: string;
  let out: string;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    server = `--server=${ts.address}`;
    out = path.join(ts.tmp, 'out');
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('averages writes one PNG per class and averages.json (class 0 included)', async () => {
    const dir = path.join(out, 'averages');
    const r = await cli([server, 'averages', 'cnn', 'mnist', '--out', dir, '--classes', '0,6', '--split', 'test']);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(fs.readFileSync(path.join(dir, 'averages.json'), 'utf8')) as Array<Record<string, unknown>>;
    assert.deepEqual(entries.map((e) => e.classIndex), [0, 6]);
    const rpc = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [0, 6], average: { split: Split.SPLIT_TEST } }));
    entries.forEach((e, i) => {
      assert.deepEqual(pngSize(path.join(dir, e.file as string)), [28, 28]);
      assert.equal(e.imagesUsed, rpc[i]!.imagesUsed);
      assert.ok(Math.abs((e.meanConfidence as number) - rpc[i]!.meanConfidence) < 1e-9);
      assert.deepEqual(e.imageShape, [1, 28, 28]);
    });
    assert.match(r.stdout, /wrote 2 images and averages\.json/);
  });

  it('neurons writes one grid per layer and a JSON index', async () => {
    const dir = path.join(out, 'neurons');
    const r = await cli([server, 'neurons', 'cnn', '--sample', '3', '--dataset', 'mnist', '--layer', '0', '--layer', '2:1,4,9', '--classes', '3', '--cols', '4', '--out', dir]);
    assert.equal(r.code, 0, r.stderr);
    const index = readJson(path.join(dir, 'neurons.json'));
    const grids = index.grids as Array<Record<string, unknown>>;
    assert.deepEqual(grids.map((g) => g.file), ['classes.png', 'layer-0.png', 'layer-2.png']);
    assert.deepEqual(grids[2]!.neurons, [1, 4, 9]);
    assert.equal(index.images, 1 + 16 + 3);
    // 16 images in 4 columns: 4 × 28 + 3 gaps of 2 pixels each way; 3 images: one row of 3.
    assert.deepEqual(pngSize(path.join(dir, 'layer-0.png')), [4 * 28 + 3 * 2, 4 * 28 + 3 * 2]);
    assert.deepEqual(pngSize(path.join(dir, 'layer-2.png')), [3 * 28 + 2 * 2, 28]);
    assert.deepEqual(pngSize(path.join(dir, 'classes.png')), [28, 28]);
    const usage = await cli([server, 'neurons', 'cnn', '--out', dir]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /exactly one of --average CLASS, --image FILE or --sample INDEX/);
    const bad = await cli([server, 'neurons', 'cnn', '--average', '1', '--dataset', 'mnist', '--layer', '7', '--out', dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /INVALID_ARGUMENT: layers\[0\]\.layer = 7/);
  });

  it('similarity --json gives one object per (class, layer) with the RPC values; text prints the curves', async () => {
    const args = [server, 'similarity', 'cnn', 'mnist', '--classes', '0,2', '--layers', '1,2', '--split', 'test', '--method', '2'];
    const r = await cli([...args, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const all = jsonLines(r.stdout);
    const lines = all.slice(0, -1);
    assert.deepEqual(lines.map((l) => [l.classIndex, l.layer]), [[0, 1], [0, 2], [2, 1], [2, 2]]);
    const messages = await collect(ts.client.similarity({ model: 'cnn', dataset: 'mnist', classes: [0, 2], layers: [1, 2], average: { split: Split.SPLIT_TEST }, method: 2 }));
    const rpc = messages.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));
    // The stream's last message, the per-layer curves, is printed too (it used to be dropped).
    const summary = messages.flatMap((m) => (m.item?.$case === 'summary' ? [m.item.value] : []));
    assert.equal(summary.length, 1);
    const printed = all.at(-1)!.summary as { classes: number[]; layers: number[]; meanOverClasses: number[]; mean: number[]; deadCount: number[] };
    assert.deepEqual(printed.classes, [0, 2]);
    assert.deepEqual(printed.layers, [1, 2]);
    assert.ok(maxAbsDiff(printed.meanOverClasses, summary[0]!.meanOverClasses) < 1e-9);
    assert.ok(maxAbsDiff(printed.mean, summary[0]!.mean) < 1e-9);
    assert.deepEqual(printed.deadCount, summary[0]!.deadCount);
    lines.forEach((l, i) => {
      assert.ok(maxAbsDiff(l.values as number[], rpc[i]!.values) < 1e-9);
      assert.equal(l.className, String(l.classIndex));
      assert.equal(l.cached, false, 'the first request with these settings');
    });
    const text = await cli(args);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /similarity method 2 .*: 2 classes × 2 layers \(from the server's cache\)/);
    assert.match(text.stdout, /^CLASS\s+NAME\s+LAYER 1\s+LAYER 2$/m);
    assert.match(text.stdout, /^all\s+mean±std\s+-?\d\.\d{3}±\d\.\d{3}/m);
  });

  it('examples and sanity: files and one JSON object per example / depth', async () => {
    const dir = path.join(out, 'examples');
    const r = await cli([server, 'examples', 'cnn', 'mnist', '--layer', '2', '--channels', '5,6', '--k', '3', '--limit', '200', '--out', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.deepEqual(lines.map((l) => [l.neuron, l.rank]), [[5, 0], [5, 1], [5, 2], [6, 0], [6, 1], [6, 2]]);
    const index = readJson(path.join(dir, 'examples.json'));
    assert.deepEqual((index.channels as Array<{ file: string }>).map((c) => c.file), ['layer-2-channel-5.png', 'layer-2-channel-6.png']);
    assert.deepEqual(pngSize(path.join(dir, 'layer-2-channel-5.png')), [3 * 28 + 2 * 2, 28]);

    const s = await cli([server, 'sanity', 'cnn', 'mnist', '--classes', '1', '--split', 'test', '--max-depth', '3', '--seed', '2', '--json']);
    assert.equal(s.code, 0, s.stderr);
    const depths = jsonLines(s.stdout);
    assert.deepEqual(depths.map((d) => d.depth), [0, 1, 2, 3]);
    assert.deepEqual(depths[0]!.layers, [0, 1, 2]);
    assert.equal((depths[3]!.reinitialised as string[]).length, 3);
  });

  it('report writes report.html (averages, confidence, curves, galleries, sanity) and summary.json over RPC', async () => {
    const dir = path.join(out, 'report');
    const r = await cli([server, 'report', '--model', 'cnn', '--dataset', 'mnist', '--out', dir, '--classes', '1,8', '--split', 'test', '--rank-images', '2', '--sanity', '--max-depth', '2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /similarity method 1: mean over classes per layer/);
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    for (const id of ['averages', 'confidence', 'curves', 'dead', 'galleries', 'sanity', 'parameters']) assert.match(html, new RegExp(`<section id="${id}"`), `section ${id}`);
    assert.ok(fs.existsSync(path.join(dir, 'report-method-2.html')));
    const summary = readJson(path.join(dir, 'summary.json'));
    assert.deepEqual((summary.averages as Array<{ classIndex: number }>).map((a) => a.classIndex), [1, 8]);
    const sims = summary.similarity as Array<{ method: number; curves: { classes: number[]; layers: number[] }; layers: Array<{ highest: unknown[] }> }>;
    assert.deepEqual(sims.map((s) => s.method), [1, 2]);
    assert.deepEqual(sims[0]!.curves.classes, [1, 8]);
    assert.deepEqual(sims[0]!.curves.layers, [0, 1, 2]);
    assert.ok(sims[0]!.layers.every((l) => l.highest.length === 2));
    assert.equal((summary.sanity as unknown[]).length, 3);
    const rows = (summary.confidence as { probabilities: number[][] }).probabilities;
    assert.equal(rows.length, 10);
    const [avg] = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [8], average: { split: Split.SPLIT_TEST } }));
    const file = (summary.averages as Array<{ file: string }>)[1]!.file;
    const png = PNG.sync.read(fs.readFileSync(path.join(dir, file)));
    const shown = Array.from({ length: 784 }, (_, p) => png.data[p * 4]!);
    const expected = Array.from(floats(avg!.image?.tensor), (x) => Math.min(255, Math.max(0, Math.round((x * 0.3081 + 0.1307) * 255))));
    assert.ok(maxAbsDiff(shown, expected) <= 1, 'the class-average PNG is the RPC average');
  });

  it('the demo script starts its own server, computes over RPC and writes out/demo (spawned with a small class set)', async () => {
    const dir = path.join(ts.tmp, 'demo');
    const script = path.resolve(__dirname, '..', '..', 'scripts', 'demo.js');
    const run = await runProcess(process.execPath, [script], {
      env: { ...process.env, INTROSPECT_DEMO_OUT: dir, INTROSPECT_DEMO_CLASSES: '0,1', INTROSPECT_DEMO_K: '20' },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`open ${path.join(dir, 'report.html').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    assert.match(html, /^<!DOCTYPE html>/);
    assert.match(html, /<section id="curves"/);
    const summary = readJson(path.join(dir, 'summary.json'));
    assert.deepEqual((summary.similarity as Array<{ method: number }>).map((s) => s.method), [1, 2]);
    const topK = (summary.extraAverages as Array<{ kind: string; averages: Array<{ imagesUsed: number; file: string }> }>)[0]!;
    assert.equal(topK.kind, 'top-k');
    assert.ok(topK.averages.every((a) => a.imagesUsed === 20));
    for (const a of [...(summary.averages as Array<{ file: string }>), ...topK.averages]) assert.deepEqual(pngSize(path.join(dir, a.file)), [28, 28]);
  });
});
