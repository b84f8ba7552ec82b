import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import type { RawBatch } from '../../services/data/dataset';
import { DatasetRegistry } from '../../services/data/registry';
import { needShared, sharedPath } from '../support/shared';

describe('data/cifar10: CIFAR-10 binary version', function () {
  const registry = new DatasetRegistry({ dataRoot: sharedPath('datasets') });
  const RECORD = 3073;

  before(async function () {
    needShared(this, 'datasets/cifar-10-batches-bin/test_batch.bin');
    await registry.register({ name: 'cifar', path: 'cifar-10-batches-bin' });
  });

  it('detects the format, names the classes from batches.meta.txt, 1,000 test images per class', () => {
    const s = registry.get('cifar').summary;
    assert.equal(s.format, 'cifar10');
    assert.deepEqual(s.classNames, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    assert.deepEqual(s.imageShape, [32, 32, 3]);
    const test = s.splits.find((x) => x.split === 'test')!;
    assert.equal(test.count, 10000);
    assert.deepEqual(test.perClass, new Array(10).fill(1000));
    assert.equal(s.splits.find((x) => x.split === 'train')!.count, 10000);
  });

  it('returns records byte for byte (R, G, B planes → HWC) with their labels', async () => {
    const file = fs.readFileSync(sharedPath('datasets/cifar-10-batches-bin/test_batch.bin'));
    const picked = [1234, 0, 9999];
    const batches: RawBatch[] = [];
    for await (const b of registry.get('cifar').batches('test', { batchSize: 2, indices: picked })) batches.push(b);
    assert.deepEqual(
      batches.map((b) => b.n),
      [2, 1],
    );
    let k = 0;
    for (const b of batches) {
      for (let i = 0; i < b.n; i++, k++) {
        const rec = file.subarray(picked[k] * RECORD, (picked[k] + 1) * RECORD);
        assert.equal(b.indices[i], picked[k]);
        assert.equal(b.labels[i], rec[0]);
        // Rebuild the planes from the batch's HWC pixels and compare with the record.
        const planes = Buffer.alloc(3072);
        for (let y = 0; y < 32; y++) {
          for (let x = 0; x < 32; x++) {
            for (let c = 0; c < 3; c++) planes[c * 1024 + y * 32 + x] = b.pixels[i * 3072 + (y * 32 + x) * 3 + c];
          }
        }
        assert.ok(planes.equals(rec.subarray(1)), `record ${picked[k]}`);
      }
    }
  });

  it('filters by class in file order', async () => {
    const file = fs.readFileSync(sharedPath('datasets/cifar-10-batches-bin/test_batch.bin'));
    const expected: number[] = [];
    for (let i = 0; i < 500; i++) if (file[i * RECORD] === 3) expected.push(i);
    const got: number[] = [];
    for await (const b of registry.get('cifar').batches('test', { batchSize: 16, limit: 500, classes: [3] })) got.push(...b.indices);
    assert.deepEqual(got, expected);
  });
});
