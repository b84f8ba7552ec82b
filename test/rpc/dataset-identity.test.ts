/**
 * Regression: result caches key a data set by its content identity, not by name + path + format. A data
 * set `d` is registered on a folder of IDX files, its class averages computed, then it is unregistered,
 * its files replaced by other content of the same size and names, and registered again under the same
 * name: the averages must be those of the new files (a plain mean over their bytes), not the old ones
 * from the cache. Unregistering drops the data set's cached results; builtin data sets have an identity.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AverageKind, type ClassAverage } from '../../api/generated/introspect/v1/analysis';
import { Split } from '../../api/generated/introspect/v1/common';
import { DatasetRegistry } from '../../services/data/registry';
import { BUNDLED_MODEL, collect, startTestServer, type TestServer } from '../support/server';
import { PLANE, counter, floats, maxAbsDiff, mnist, toInput } from './support';

const N = 300;
const CLASS = 3;

function idxFile(dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt8(0x08, 2);
  head.writeUInt8(dims.length, 3);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}

/** Writes the first N MNIST test images (through `pixel`) and their labels as a test split in `dir`. */
function writeSplit(dir: string, pixel: (p: number) => number): Uint8Array {
  const m = mnist('test');
  const images = Uint8Array.from(m.images.subarray(0, N * PLANE), pixel);
  fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idxFile([N, 28, 28], images));
  fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idxFile([N], m.labels.subarray(0, N)));
  return images;
}

/** The plain mean of class CLASS's images in `images`, in the bundled model's input space. */
function plainMean(images: Uint8Array): Float64Array {
  const labels = mnist('test').labels;
  const sum = new Float64Array(PLANE);
  let count = 0;
  for (let i = 0; i < N; i++) {
    if (labels[i] !== CLASS) continue;
    count++;
    for (let p = 0; p < PLANE; p++) sum[p] += images[i * PLANE + p]!;
  }
  return sum.map((s) => toInput(s / count));
}

describe('rpc: result caches key a data set by its content identity', function () {
  this.timeout(120_000);
  let ts: TestServer;
  let dir: string;
  const averages = async (): Promise<ClassAverage> => {
    const got = await collect(
      ts.client.classAverages({ model: 'cnn', dataset: 'd', classes: [CLASS], average: { split: Split.SPLIT_TEST, kind: AverageKind.AVERAGE_KIND_MEAN, rescale: false } }),
    );
    assert.equal(got.length, 1);
    return got[0]!;
  };
  const metric = async (name: string): Promise<number> => counter(await (await fetch(ts.metricsUrl)).text(), name, { cache: 'averages' });

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    dir = path.join(ts.dataRoot, 'd');
    fs.mkdirSync(dir);
  });
  after(async () => {
    await ts?.close();
  });

  it('files replaced between unregistering and registering again give the new averages, not the cached ones', async () => {
    const first = writeSplit(dir, (p) => p);
    await ts.client.registerDataset({ name: 'd', path: 'd' });
    const a = floats((await averages()).image?.tensor);
    assert.ok(maxAbsDiff(a, plainMean(first)) < 1e-5, `first content: differs from the plain mean by ${maxAbsDiff(a, plainMean(first))}`);
    const hits = await metric('introspect_cache_hits_total');
    assert.ok(maxAbsDiff(floats((await averages()).image?.tensor), a) === 0);
    assert.equal(await metric('introspect_cache_hits_total'), hits + 1, 'asked again, the averages come from the cache');

    await ts.client.unregisterDataset("d");
    const second = writeSplit(dir, (p) => 255 - p); // other content, same names and sizes
    await ts.client.registerDataset({ name: 'd', path: 'd' });
    const b = floats((await averages()).image?.tensor);
    assert.ok(maxAbsDiff(b, plainMean(second)) < 1e-5, `second content: differs from the plain mean of the new files by ${maxAbsDiff(b, plainMean(second))}`);
    assert.ok(maxAbsDiff(b, a) > 1, 'the new averages are not the old ones');
  });

  it('unregistering drops the data set\'s cached results: registered again on the same files, the averages are computed again', async () => {
    await averages(); // cached for the current registration
    const misses = await metric('introspect_cache_misses_total');
    await ts.client.unregisterDataset("d");
    await ts.client.registerDataset({ name: 'd', path: 'd' });
    await averages();
    assert.equal(await metric('introspect_cache_misses_total'), misses + 1, 'the entry went with the unregistered data set');
  });

  it('the identity follows the files and the registration arguments; builtin data sets have one', async () => {
    const reg = new DatasetRegistry({ dataRoot: ts.dataRoot });
    const id = async (name: string, args: { path: string; classNames?: string[] }): Promise<string> => {
      const s = await reg.register({ name, ...args });
      reg.unregister(name);
      assert.match(s.identity ?? '', /^[0-9a-f]{64}$/);
      return s.identity!;
    };
    const same = await id('x', { path: 'd' });
    assert.equal(await id('x', { path: 'd' }), same, 'unchanged files and arguments: the same identity');
    assert.notEqual(await id('x', { path: 'd', classNames: 'abcdefghij'.split('') }), same, 'other class names: another identity');
    writeSplit(dir, (p) => p);
    assert.notEqual(await id('x', { path: 'd' }), same, 'rewritten files: another identity');
    const builtin = await id('m', { path: 'builtin:mnist' });
    assert.equal(await id('m', { path: 'builtin:mnist' }), builtin);
  });
});
