/**
 * Both engines on the shared models and real images: logits against the original model run directly in
 * onnxruntime, masks against a model whose weights were zeroed in the IR, activation statistics against a
 * plain loop over an extra output of the original model, and attributions of one engine against the other.
 */
import * as assert from 'node:assert/strict';
import { createEngines, type Engines } from '../../services/engines';
import type { AttributionTarget, EngineModel, ReluRule } from '../../services/engines/engine';
import type { ConvOp, IrGraph } from '../../services/graph/ir';
import { activationValue } from '../../services/graph/layers';
import { needShared } from '../support/shared';
import { channelStats, runOriginal } from './reference';
import { cifarImages, engineModel, mnistImages, relativeError, rowRelativeError, sharedModel } from './support';

const KINDS = ['onnxruntime', 'tfjs'] as const;

/** A copy of the graph whose conv layers have the listed output channels' weights and biases zeroed. */
function zeroChannels(model: EngineModel, mask: Map<number, number[]>): EngineModel {
  const g = model.graph;
  const weights = new Map(g.weights);
  for (const [j, channels] of mask) {
    const layer = model.convLayers[j]!;
    const op = g.nodes.find((n) => n.name === layer.node)!.op as ConvOp;
    const w = g.weights.get(op.weight)!;
    const data = w.data.slice();
    const per = data.length / w.shape[0]!;
    for (const c of channels) data.fill(0, c * per, (c + 1) * per);
    weights.set(op.weight, { shape: w.shape, data });
    if (op.bias) {
      const b = g.weights.get(op.bias)!.data.slice();
      for (const c of channels) b[c] = 0;
      weights.set(op.bias, { shape: [b.length], data: b });
    }
  }
  const graph: IrGraph = { ...g, weights };
  return engineModel(graph, `${model.id}-zeroed-${[...mask.keys()].join('_')}`);
}

describe('engines: shared models on real images', function () {
  let engines: Engines;

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 2, intraOpThreads: 1 }, log: () => undefined });
    await engines.ready();
  });

  after(async function () {
    await engines?.close();
  });

  for (const kind of KINDS) {
    describe(kind, function () {
      it('resnet20: logits equal the original model in onnxruntime on CIFAR-10 test images', async function () {
        needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
        const { bytes, model } = sharedModel('resnet20_cifar10.onnx');
        const n = 6;
        const { data } = cifarImages(100, n, true);
        const got = await engines.engineFor(kind).forward(model, data, n);
        const want = (await runOriginal(bytes, data, [n, 3, 32, 32])).get('logits')!.data as Float32Array;
        assert.ok(relativeError(got, want) < 1e-5, `relative error ${relativeError(got, want)}`);
      });

      it('vgg11_mnist: logits equal the original model on MNIST test digits, and classify them', async function () {
        needShared(this, 'models/vgg11_mnist.onnx');
        const { bytes, model } = sharedModel('vgg11_mnist.onnx');
        const n = 5;
        const { data, labels } = mnistImages(0, n);
        const got = await engines.engineFor(kind).forward(model, data, n);
        const want = (await runOriginal(bytes, data, [n, 1, 32, 32])).get('logits')!.data as Float32Array;
        assert.ok(relativeError(got, want) < 1e-5, `relative error ${relativeError(got, want)}`);
        const predicted = labels.map((_, i) => {
          const row = Array.from(got.subarray(i * 10, (i + 1) * 10));
          return row.indexOf(Math.max(...row));
        });
        assert.deepEqual(predicted, labels);
      });

      it('vgg11_cifar10: masks zero what zeroed weights zero', async function () {
        needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
        const { model } = sharedModel('vgg11_cifar10.onnx');
        const n = 3;
        const { data } = cifarImages(0, n, false);
        const chosen = new Map([
          [1, [0, 5, 9, 100]],
          [4, Array.from({ length: 200 }, (_, i) => i * 2)],
        ]);
        const mask = new Map([...chosen].map(([j, c]) => [j, Uint32Array.from(c)]));
        const engine = engines.engineFor(kind);
        const masked = await engine.forward(model, data, n, { mask });
        const zeroedModel = zeroChannels(model, chosen);
        const zeroed = await engine.forward(zeroedModel, data, n);
        const plain = await engine.forward(model, data, n);
        await engine.release(zeroedModel.id);
        assert.ok(relativeError(masked, zeroed) < 1e-5, `relative error ${relativeError(masked, zeroed)}`);
        assert.ok(relativeError(masked, plain) > 1e-2, 'the mask changes the logits');
        // Activation statistics see the mask too: masked channels are all zero after the ReLU.
        const [stats] = await engine.activations(model, data, n, [4], { mask });
        for (let i = 0; i < n; i++) {
          assert.equal(stats!.mean[i * 512 + 2], 0);
          assert.equal(stats!.zeroFraction[i * 512 + 2], 1);
        }
      });

      it('resnet20: activation statistics equal a plain loop over extra outputs of the original model', async function () {
        needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
        const { bytes, model } = sharedModel('resnet20_cifar10.onnx');
        const n = 4;
        const { data } = cifarImages(200, n, true);
        const layers = [13, 0, 2]; // unsorted; layer 2 has no activation of its own (its z goes into an add)
        const got = await engines.engineFor(kind).activations(model, data, n, layers);
        const values = layers.map((j) => activationValue(model.graph, model.convLayers[j]!));
        const ref = await runOriginal(bytes, data, [n, 3, 32, 32], values);
        assert.deepEqual(got.map((a) => a.layer), layers);
        layers.forEach((j, i) => {
          const want = channelStats(ref.get(values[i]!)!);
          assert.equal(got[i]!.channels, model.convLayers[j]!.channels);
          assert.ok(relativeError(got[i]!.mean, want.mean) < 1e-5, `layer ${j} mean: ${relativeError(got[i]!.mean, want.mean)}`);
          // A value within float noise of 0 may land on either side; allow one position per channel.
          const h = model.convLayers[j]!.shape[1]! * model.convLayers[j]!.shape[2]!;
          const worst = Math.max(...got[i]!.zeroFraction.map((v, k) => Math.abs(v - want.zeroFraction[k]!)));
          assert.ok(worst <= 1 / h + 1e-6, `layer ${j} zero fraction off by ${worst}`);
        });
      });
    });
  }

  describe('attributions agree between onnxruntime and tfjs (relative 1e-4)', function () {
    const cases: Array<{ file: string; normalise: boolean; layers: number[] }> = [
      { file: 'resnet20_cifar10.onnx', normalise: true, layers: [2, 13] },
      { file: 'vgg11_cifar10.onnx', normalise: false, layers: [1, 4] },
    ];
    const rules: ReluRule[] = ['guided', 'gradient', 'deconv'];
    for (const c of cases) {
      it(`${c.file}: conv targets on layers ${c.layers.join(', ')} and logit targets, every rule`, async function () {
        needShared(this, `models/${c.file}`, 'datasets/cifar-10-batches-bin/test_batch.bin');
        const { model } = sharedModel(c.file);
        const { data, labels } = cifarImages(7, 1, c.normalise);
        const targets: AttributionTarget[] = [
          ...c.layers.map((layer): AttributionTarget => ({ kind: 'conv', layer, channels: [7, 0, 3], objective: 'abs_sum' })),
          { kind: 'conv', layer: c.layers[1]!, channels: [1, 2], objective: 'relu_sum' },
          { kind: 'logit', classes: [labels[0]!, (labels[0]! + 1) % 10] },
        ];
        for (const target of targets) {
          for (const rule of rules) {
            if (target.kind === 'conv' && target.objective === 'relu_sum' && rule !== 'guided') continue;
            const a = await engines.onnxruntime.attribute(model, data, target, rule);
            const b = await engines.tfjs.attribute(model, data, target, rule);
            const what = `${rule} ${JSON.stringify(target)}`;
            assert.ok(b.some((v) => v !== 0), `${what}: the tfjs image is not all zeros`);
            const err = rowRelativeError(a, b, data.length);
            assert.ok(err < 1e-4, `${what}: relative error ${err}`);
          }
        }
      });
    }
  });
});
