import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import type { RawBatch } from '../../services/data/dataset';
import { DatasetRegistry } from '../../services/data/registry';
import { needShared, sharedPath } from '../support/shared';

describe('data/image-folder: Imagenette subset', function () {
  const registry = new DatasetRegistry({ dataRoot: sharedPath('datasets') });
  const root = sharedPath('datasets/imagenette-subset');

  before(async function () {
    needShared(this, 'datasets/imagenette-subset/val');
    await registry.register({ name: 'inet', path: 'imagenette-subset' });
  });

  it('finds 10 classes sorted by synset id, val serving as test, 224×224 RGB', () => {
    const s = registry.get('inet').summary;
    assert.equal(s.format, 'image-folder');
    const folders = fs.readdirSync(path.join(root, 'train')).sort();
    assert.equal(folders.length, 10);
    assert.deepEqual(s.classNames, folders);
    assert.deepEqual(s.imageShape, [224, 224, 3]);
    const perClassVal = folders.map((f) => fs.readdirSync(path.join(root, 'val', f)).length);
    assert.deepEqual(s.splits.find((x) => x.split === 'test')!.perClass, perClassVal);
    assert.equal(s.splits.find((x) => x.split === 'train')!.count, 1300);
  });

  it('decodes at stored size identical to jpeg-js on the file, and resizes to the asked size', async () => {
    const d = registry.get('inet');
    const folder = d.summary.classNames[2];
    const first = fs.readdirSync(path.join(root, 'val', folder)).sort()[0];
    const index = d.summary.splits.find((x) => x.split === 'test')!.perClass.slice(0, 2).reduce((a, b) => a + b, 0);
    const direct = decodeJpeg(fs.readFileSync(path.join(root, 'val', folder, first)), { useTArray: true, formatAsRGBA: false });

    const native: RawBatch[] = [];
    for await (const b of d.batches('test', { batchSize: 4, indices: [index] })) native.push(b);
    assert.equal(native[0].height, direct.height);
    assert.equal(native[0].width, direct.width);
    assert.equal(native[0].labels[0], 2);
    assert.ok(Buffer.from(native[0].pixels).equals(Buffer.from(direct.data)));

    let count = 0;
    for await (const b of d.batches('test', { batchSize: 8, limit: 20, size: [32, 40] })) {
      assert.equal(b.height, 32);
      assert.equal(b.width, 40);
      assert.equal(b.channels, 3);
      assert.equal(b.pixels.length, b.n * 32 * 40 * 3);
      count += b.n;
    }
    assert.equal(count, 20);
  });
});
