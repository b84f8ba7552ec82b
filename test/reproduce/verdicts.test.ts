/**
 * The reproduction's verdicts on constructed numbers: each word is "held" exactly when its rule holds
 * (every measured layer), "held in part" when it holds in some, "did not hold" when in none, and
 * "not measured" without numbers; and the doc prints the word with its rule. The model facts the doc
 * states are read from the shared sidecar.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { findings, said, trainingSentence } from '../../scripts/reproduce/markdown';
import type { Results } from '../../scripts/reproduce/run';
import * as V from '../../scripts/reproduce/verdicts';
import { PruneCriterion } from '../../api/generated/introspect/v1/analysis';
import { trainingFacts } from '../../services/models/sidecar';
import { needShared, sharedPath } from '../support/shared';

const rows = (pairs: Array<[number, number, number]>): V.PruneRow[] => pairs.map(([layer, top, bottom]) => ({ layer, top, bottom }));

describe('reproduce: verdicts', () => {
  it('top worse than bottom: held only when top < bottom in every measured layer of 1–7', () => {
    assert.equal(V.topWorseThanBottom(rows([[1, 0.2, 0.7], [2, 0.3, 0.7], [7, 0.6, 0.7]])).word, 'held');
    // Layer 0 is outside the claim: the reverse there does not count against it.
    assert.equal(V.topWorseThanBottom(rows([[0, 0.9, 0.1], [3, 0.2, 0.7]])).word, 'held');
    assert.equal(V.topWorseThanBottom(rows([[1, 0.2, 0.7], [2, 0.8, 0.7]])).word, 'held in part');
    assert.equal(V.topWorseThanBottom(rows([[1, 0.7, 0.7], [2, 0.8, 0.7]])).word, 'did not hold', 'equal is not worse');
    assert.equal(V.topWorseThanBottom(rows([[0, 0.1, 0.7]])).word, 'not measured');
    assert.equal(V.topWorseThanBottom(rows([[1, NaN, 0.7]])).word, 'not measured');
  });

  it('drop of the thesis size: top-pruned accuracy at most DROP_LIMIT in layers 1–5', () => {
    const L = V.DROP_LIMIT;
    assert.equal(V.dropOfThesisSize(rows([[1, L, 1], [5, 0.1, 1], [6, 0.9, 1]])).word, 'held', 'at the limit counts; layer 6 is outside');
    assert.equal(V.dropOfThesisSize(rows([[1, L, 1], [2, L + 0.001, 1]])).word, 'held in part');
    assert.equal(V.dropOfThesisSize(rows([[1, 0.6, 1], [2, 0.5, 1]])).word, 'did not hold');
    assert.equal(V.dropOfThesisSize(rows([[0, 0.1, 1], [7, 0.1, 1]])).word, 'not measured');
  });

  it('curve rises: held exactly when the peak in layers 2 and up is above every value of layers 0–1', () => {
    const L = [0, 1, 2, 3];
    assert.equal(V.curveRises(L, [0.1, 0.4, 0.41, 0.2]).word, 'held');
    assert.equal(V.curveRises(L, [0.1, 0.4, 0.4, 0.2]).word, 'did not hold', 'equal is no rise');
    assert.equal(V.curveRises(L, [0.288, 0.116, 0.095, 0.105]).word, 'did not hold');
    assert.equal(V.curveRises([0, 3], [0.12, 0.8]).word, 'held', 'by layer index, not position');
    assert.equal(V.curveRises([2, 3], [0.12, 0.8]).word, 'not measured', 'no early layer');
    assert.equal(V.curveRises([0, 1], [0.1, 0.2]).word, 'not measured');
  });

  it('method 2 higher: every layer, some, none', () => {
    assert.equal(V.method2Higher([0.1, 0.2], [0.2, 0.3]).word, 'held');
    assert.equal(V.method2Higher([0.1, 0.2], [0.2, 0.1]).word, 'held in part');
    assert.equal(V.method2Higher([0.3, 0.2], [0.2, 0.2]).word, 'did not hold');
    assert.equal(V.method2Higher([], []).word, 'not measured');
  });

  it('means misread: held when at least half the classes get p(true) below the limit', () => {
    assert.equal(V.meansMisread([0.1, 0.2, 0.9, 0.9]).word, 'held');
    assert.equal(V.meansMisread([0.1, 0.9, 0.9, 0.9]).word, 'held in part');
    assert.equal(V.meansMisread([V.MISREAD_BELOW, 0.9]).word, 'did not hold', 'at the limit is read');
    assert.equal(V.meansMisread([]).word, 'not measured');
  });

  it('top-k read: held exactly when the mean diagonal reaches READ_AT_LEAST', () => {
    assert.equal(V.topKRead([V.READ_AT_LEAST, V.READ_AT_LEAST]).word, 'held');
    assert.equal(V.topKRead([1, V.READ_AT_LEAST - 0.01 * 2]).word, 'held', 'the mean, not each class');
    assert.equal(V.topKRead([V.READ_AT_LEAST - 1e-6]).word, 'did not hold');
  });

  it('truncation beats the full model: the probe on conv layer 3 against the full accuracy', () => {
    assert.equal(V.truncationBeatsFull([{ layer: 3, testAccuracy: 0.8 }], 0.7).word, 'held');
    assert.equal(V.truncationBeatsFull([{ layer: 3, testAccuracy: 0.7 }, { layer: 6, testAccuracy: 0.9 }], 0.7).word, 'did not hold', 'another layer does not count');
    assert.equal(V.truncationBeatsFull([{ layer: 0, testAccuracy: 0.9 }], 0.7).word, 'not measured');
  });

  it('the doc says each verdict with its rule, never a word the numbers did not give', () => {
    const P = PruneCriterion;
    const prune = (layer: number, top: number, bottom: number) => [
      { layer, criterion: P.PRUNE_CRITERION_SIMILARITY_TOP, accuracy: top },
      { layer, criterion: P.PRUNE_CRITERION_SIMILARITY_BOTTOM, accuracy: bottom },
    ];
    const r = {
      options: { k: 10, sanityMethod: 2 },
      model: { name: 'm.onnx', parameters: 1, convChannels: [4, 4], classNames: ['a', 'b'] },
      kinds: [
        { name: 'mean', confidence: { diagonal: [0.9, 0.95] } },
        { name: 'top-10', confidence: { diagonal: [0.2, 0.3] } },
      ],
      similarity: [],
      prune: { baseline: 0.8, results: [...prune(1, 0.9, 0.5), ...prune(2, 0.9, 0.5)] },
      probes: { modelAccuracy: 0.8, results: [] },
      sanity: [],
    } as unknown as Results;
    const text = findings(r).join('\n');
    assert.ok(text.includes(said(V.topWorseThanBottom(rows([[1, 0.9, 0.5], [2, 0.9, 0.5]])))));
    assert.match(text, /top < bottom in layers 1–7 and the reverse in layer 0: \*\*did not hold\*\* \(held when/);
    assert.match(text, /Plain means misread here \(0 of 2 below 0\.5\): \*\*did not hold\*\*/);
    assert.match(text, /top-10 averages read as their class \(mean 0\.250\): \*\*did not hold\*\*/);
    assert.doesNotMatch(text, /\*\*held\*\*/);
  });
});

describe('reproduce: model facts from the sidecar', () => {
  it('reads epochs, test accuracy and training images, and says them against the thesis', function () {
    needShared(this, 'models/vgg11_cifar10.json');
    const file = sharedPath('models/vgg11_cifar10.json');
    const text = fs.readFileSync(file, 'utf8');
    const doc = JSON.parse(text) as { test_accuracy: number; training_log: Array<{ epoch: number }> };
    const facts = trainingFacts(text, file);
    assert.equal(facts.testAccuracy, doc.test_accuracy);
    assert.equal(facts.epochs, doc.training_log.at(-1)!.epoch);
    assert.equal(facts.trainingImages, 50_000);
    const s = trainingSentence({ model: { name: 'vgg11_cifar10.onnx', parameters: 0, convChannels: [], classNames: [] }, training: facts });
    assert.equal(s, `\`vgg11_cifar10.onnx\` was trained for this project for ${facts.epochs} epochs instead of the thesis' 30 on 50,000 training images (its sidecar: test accuracy ${doc.test_accuracy.toFixed(3)}; thesis 0.739).`);
  });

  it('leaves out what a sidecar does not state, and rejects a malformed one', () => {
    assert.deepEqual(trainingFacts('{"input":{}}', 'x.json'), {});
    assert.equal(trainingFacts('{"training_log":[{},{},{}]}', 'x.json').epochs, 3);
    assert.throws(() => trainingFacts('{"test_accuracy":"high"}', 'x.json'), /x\.json: test_accuracy must be a number/);
    assert.throws(() => trainingFacts('{"training_log":5}', 'x.json'), /training_log must be a list/);
    assert.match(trainingSentence({ model: { name: 'm', parameters: 0, convChannels: [], classNames: [] }, training: {} }), /unrecorded number of epochs .*no test accuracy recorded/);
  });
});
