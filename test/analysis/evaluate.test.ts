import { strict as assert } from 'node:assert';
import { evaluate, type EvaluateArgs, type EvaluateUpdate } from '../../services/analysis/evaluate';
import { DatasetRegistry } from '../../services/data/registry';
import { needShared, sharedPath } from '../support/shared';
import { cifarTestRecords, normalisePlanes, ortModel, softmaxAt, type OrtModel } from './ort-model';

async function run(args: EvaluateArgs): Promise<EvaluateUpdate[]> {
  const out: EvaluateUpdate[] = [];
  for await (const u of evaluate(args)) out.push(u);
  return out;
}

describe('analysis/evaluate: ResNet-20 on the CIFAR-10 test batch', function () {
  const registry = new DatasetRegistry({ dataRoot: sharedPath('datasets') });
  let model: OrtModel;

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'models/resnet20_cifar10.json', 'datasets/cifar-10-batches-bin/test_batch.bin');
    model = await ortModel('resnet20_cifar10');
    await registry.register({ name: 'cifar', path: 'cifar-10-batches-bin' });
  });

  it('counts, accuracy and cross-entropy of a subset match a plain loop', async () => {
    const LIMIT = 333;
    const updates = await run({
      dataset: registry.get('cifar'),
      split: 'test',
      preprocessing: model.spec,
      inputShape: model.inputShape,
      forward: model.forward,
      limit: LIMIT,
      batchSize: 100,
    });
    assert.deepEqual(
      updates.map((u) => u.progress.done),
      [100, 200, 300, 333],
    );
    assert.ok(updates.every((u) => u.progress.total === LIMIT));
    assert.ok(updates.slice(0, -1).every((u) => u.result === undefined));
    const result = updates[updates.length - 1].result!;

    const { labels, planes } = cifarTestRecords(LIMIT);
    const inputs = new Float32Array(LIMIT * 3072);
    planes.forEach((p, i) => inputs.set(normalisePlanes(p, model.spec.mean, model.spec.std), i * 3072));
    const logits = await model.forward(inputs, LIMIT);
    const count = new Array<number>(10).fill(0);
    const correct = new Array<number>(10).fill(0);
    const loss = new Array<number>(10).fill(0);
    labels.forEach((l, i) => {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
      count[l]++;
      if (row.indexOf(Math.max(...row)) === l) correct[l]++;
      loss[l] -= Math.log(softmaxAt(logits, i, 10, l));
    });
    const totalCorrect = correct.reduce((a, b) => a + b, 0);
    assert.equal(result.count, LIMIT);
    assert.equal(result.correct, totalCorrect);
    assert.equal(result.accuracy, totalCorrect / LIMIT);
    assert.ok(Math.abs(result.loss - loss.reduce((a, b) => a + b, 0) / LIMIT) < 1e-5);
    result.perClass.forEach((pc, c) => {
      assert.equal(pc.count, count[c]);
      assert.equal(pc.correct, correct[c]);
      assert.ok(Math.abs(pc.loss - loss[c] / count[c]) < 1e-5);
    });
    assert.ok(result.seconds > 0 && result.imagesPerSecond > 0);
  });

  it('scores ≈ 0.81 on all 10,000 test images with its sidecar preprocessing (the one full-set run)', async () => {
    const updates = await run({
      dataset: registry.get('cifar'),
      split: 'test',
      preprocessing: model.spec,
      inputShape: model.inputShape,
      forward: model.forward,
    });
    const result = updates[updates.length - 1].result!;
    assert.equal(result.count, 10000);
    assert.ok(Math.abs(result.accuracy - 0.81) < 0.005, `accuracy ${result.accuracy}`);
    assert.equal(result.perClass.length, 10);
    assert.ok(result.perClass.every((pc) => pc.count === 1000));
    assert.equal(
      result.perClass.reduce((s, pc) => s + pc.correct, 0),
      result.correct,
    );
    // Per-class accuracies vary (the hard classes of CIFAR-10: cat, bird, dog below the vehicles).
    const acc = result.perClass.map((pc) => pc.accuracy);
    assert.ok(Math.min(...acc) < result.accuracy && Math.max(...acc) > result.accuracy);
    console.log(
      `      ResNet-20 CIFAR-10 test: accuracy ${result.accuracy.toFixed(4)}, loss ${result.loss.toFixed(4)}, ` +
        `${result.imagesPerSecond.toFixed(0)} images/s; per class ${acc.map((a) => a.toFixed(3)).join(' ')}`,
    );
  });
});
