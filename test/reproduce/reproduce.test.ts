/**
 * `npm run reproduce -- --quick`: the compiled script runs end to end on a small CIFAR-10 subset and
 * writes REPRODUCTION.md with its tables and figures. The unpruned accuracy the doc reports is checked
 * against onnxruntime run directly on the same test images; the confidence table against the
 * heatmap's matrix in results.json (rows are distributions).
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { PNG } from 'pngjs';
import { parseOptions } from '../../scripts/reproduce';
import { needShared, sharedPath, SHARED } from '../support/shared';

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'reproduce.js');
const MODEL = 'models/vgg11_cifar10.onnx';
const CIFAR = 'datasets/cifar-10-batches-bin/test_batch.bin';
const RECORD = 3073;

function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [SCRIPT, ...args], { env: { ...process.env, INTROSPECT_SHARED: SHARED }, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

/** Accuracy of the model file on the first n test records, pixels / 255, straight through onnxruntime. */
async function directAccuracy(n: number): Promise<number> {
  const bytes = fs.readFileSync(sharedPath(CIFAR)).subarray(0, n * RECORD);
  const x = new Float32Array(n * 3072);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(bytes[i * RECORD]!);
    for (let j = 0; j < 3072; j++) x[i * 3072 + j] = bytes[i * RECORD + 1 + j]! / 255;
  }
  const session = await ort.InferenceSession.create(sharedPath(MODEL));
  try {
    const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [n, 3, 32, 32]) });
    const logits = out[session.outputNames[0]!]!.data as Float32Array;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
    }
    return correct / n;
  } finally {
    await session.release();
  }
}

/** The rows of the markdown table that follows the heading `## <heading>`. */
function tableAfter(doc: string, heading: string): string[][] {
  const at = doc.indexOf(`## ${heading}`);
  assert.ok(at >= 0, `the doc has a section '${heading}'`);
  const rest = doc.slice(at).split('\n').slice(1);
  const start = rest.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const l of rest.slice(start)) {
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows.slice(2);
}

describe('reproduce script', function () {
  it('rejects an unknown flag and reads the limits it is given', () => {
    assert.throws(() => parseOptions(['--fast']), /unknown argument '--fast'/);
    const o = parseOptions(['--prune-limit', '2000', '--sanity-classes', '1,2']);
    assert.equal(o.pruneLimit, 2000);
    assert.deepEqual(o.sanityClasses, [1, 2]);
    assert.equal(o.layers, undefined, 'a full run covers every conv layer');
    assert.throws(() => parseOptions(['--prune-limit', 'x']), /--prune-limit/);
  });

  describe('--quick', function () {
    this.timeout(180_000);
    let out: string;
    let doc: string;

    before(async function () {
      needShared(this, MODEL, CIFAR);
      out = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'reproduce-test-'));
      await run(['--quick', '--out', out]);
      doc = await fs.promises.readFile(path.join(out, 'REPRODUCTION.md'), 'utf8');
    });

    after(async () => {
      if (out) await fs.promises.rm(out, { recursive: true, force: true });
    });

    it('writes table 5-1 with every criterion for the quick layers, and the unpruned accuracy onnxruntime gives', async () => {
      const rows = tableAfter(doc, 'Table 5-1');
      assert.deepEqual(rows.map((r) => r[0]), ['0', '3']);
      for (const r of rows) {
        assert.equal(r.length, 10);
        for (const cell of [r[4], r[5], r[8], r[9]]) assert.match(cell!, /^\d\.\d{3}$/);
        assert.match(r[7]!, /^\d\.\d{3} ± \d\.\d{3}$/, 'random: mean ± std');
      }
      assert.equal(rows[1]![2], '0.198', "the thesis' number sits beside ours");
      const m = /Unpruned accuracy on these 100 test images: \*\*(\d\.\d{3})\*\*/.exec(doc);
      assert.ok(m, 'the doc states the unpruned accuracy');
      assert.equal(m[1], (await directAccuracy(100)).toFixed(3));
    });

    it('writes the confidence table of all four kinds, matching the matrices it drew', async () => {
      const rows = tableAfter(doc, 'Class averages and confidence');
      assert.equal(rows.length, 10);
      const results = JSON.parse(await fs.promises.readFile(path.join(out, 'reproduction', 'results.json'), 'utf8')) as {
        kinds: Array<{ name: string; confidence: { probabilities: number[]; classes: number } }>;
      };
      assert.deepEqual(results.kinds.map((k) => k.name), ['mean', 'top-10', 'bottom-10', 'activation max']);
      results.kinds.forEach((k, ki) => {
        for (let r = 0; r < 10; r++) {
          const row = k.confidence.probabilities.slice(r * 10, r * 10 + 10);
          assert.ok(Math.abs(row.reduce((s, p) => s + p, 0) - 1) < 1e-4, `${k.name} row ${r} is a distribution`);
          assert.equal(rows[r]![1 + ki], row[r]!.toFixed(3), `${k.name} class ${r}: the table shows the matrix' diagonal`);
        }
      });
    });

    it('writes the curves, probes and sanity tables and the figures the doc links', async () => {
      const curves = tableAfter(doc, 'Similarity curves');
      assert.deepEqual(curves.map((r) => r[0]), ['1: mean over classes', '1: std of class means', '2: mean over classes', '2: std of class means']);
      for (const r of curves) for (const c of r.slice(1)) assert.match(c, /^-?\d\.\d{3}$/);
      assert.deepEqual(tableAfter(doc, 'Layer probes').map((r) => r[0]), ['0', '3']);
      assert.deepEqual(tableAfter(doc, 'Sanity check').map((r) => r[0]), ['0', '1']);
      assert.match(doc, /## What held and what did not\n\n- \*\*Top vs bottom 40%/);
      const linked = [...doc.matchAll(/\]\(reproduction\/([^)]+)\)/g)].map((m) => m[1]!);
      assert.ok(linked.length >= 5, `figures linked: ${linked.join(', ')}`);
      for (const f of linked) {
        const bytes = await fs.promises.readFile(path.join(out, 'reproduction', f));
        if (f.endsWith('.png')) assert.ok(PNG.sync.read(bytes).width > 0);
        else assert.match(bytes.toString('utf8'), /^<svg [^>]*>[\s\S]*<polyline [\s\S]*<\/svg>\n$/);
      }
      const grid = PNG.sync.read(await fs.promises.readFile(path.join(out, 'reproduction', 'class-averages.png')));
      assert.deepEqual([grid.width, grid.height], [10 * 68 + 4, 4 * 68 + 4], '4 kinds × 10 classes of 32×32 images shown at 2×');
    });
  });
});
