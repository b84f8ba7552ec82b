import { strict as assert } from 'node:assert';
import { confidenceMatrix } from '../../services/analysis/confidence';
import { needShared } from '../support/shared';
import { cifarTestRecords, normalisePlanes, ortModel, softmaxAt } from './ort-model';

describe('analysis/confidence: softmax matrix of a set of images (ResNet-20)', function () {
  it('returns the softmax rows of the model on each image', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const model = await ortModel('resnet20_cifar10');
    const n = 12;
    const { planes } = cifarTestRecords(n);
    const images = new Float32Array(n * 3072);
    planes.forEach((p, i) => images.set(normalisePlanes(p, model.spec.mean, model.spec.std), i * 3072));
    const { probabilities, classes } = await confidenceMatrix(images, n, model.forward);
    assert.equal(classes, 10);
    assert.equal(probabilities.length, n * 10);
    const logits = await model.forward(images, n);
    for (let r = 0; r < n; r++) {
      let rowSum = 0;
      for (let j = 0; j < 10; j++) {
        rowSum += probabilities[r * 10 + j];
        assert.ok(Math.abs(probabilities[r * 10 + j] - softmaxAt(logits, r, 10, j)) < 1e-6);
      }
      assert.ok(Math.abs(rowSum - 1) < 1e-5);
    }
    await assert.rejects(confidenceMatrix(images, 5, model.forward), { kind: 'invalid-argument' });
  });
});
