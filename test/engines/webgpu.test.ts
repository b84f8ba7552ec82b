/**
 * The onnxruntime engine on device `webgpu` (onnxruntime-node's built-in WebGPU provider: Dawn on Vulkan)
 * against the same engine on the CPU. In CI there is no GPU: Mesa's software Vulkan driver (lavapipe, installed
 * by scripts/setup.sh) runs the same shaders, so the GPU code path is exercised for real, slowly. Where no Vulkan
 * device exists the suite is pending with the provider's own reason.
 *
 * Tolerance: the same rule as the CPU engines' comparison (relative 1e-4 of each image's maximum).
 * Shader compilation on lavapipe takes seconds per new graph (about a minute for the first one on 2 busy
 * cores), hence the long timeouts.
 */
import * as assert from 'node:assert/strict';
import type { EngineStatus } from '../../services/engines/engine';
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { needShared } from '../support/shared';
import type { IrGraph } from '../../services/graph/ir';
import { IntrospectError } from '../../services/errors';
import { cifarImages, engineModel, relativeError, rowRelativeError, sharedModel } from './support';

/** x [4, 6, 6] -> conv (group `group`, 4 -> 4 channels) -> relu -> flatten -> dense(3). */
function groupedModel(group: number): IrGraph {
  const w = Float32Array.from({ length: 4 * (4 / group) * 9 }, (_, i) => Math.sin(i * 0.7));
  return {
    input: { name: 'x', shape: [4, 6, 6] },
    output: 'y',
    nodes: [
      { name: 'grouped', inputs: ['x'], output: 'z', op: { op: 'conv', weight: 'w', kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group } },
      { name: 'relu', inputs: ['z'], output: 'a', op: { op: 'relu' } },
      { name: 'flat', inputs: ['a'], output: 'f', op: { op: 'flatten' } },
      { name: 'fc', inputs: ['f'], output: 'y', op: { op: 'dense', weight: 'fw' } },
    ],
    weights: new Map([
      ['w', { shape: [4, 4 / group, 3, 3], data: w }],
      ['fw', { shape: [3, 144], data: Float32Array.from({ length: 432 }, (_, i) => Math.cos(i)) }],
    ]),
    shapes: new Map([['x', [4, 6, 6]], ['z', [4, 6, 6]], ['a', [4, 6, 6]], ['f', [144]], ['y', [3]]]),
  };
}

const SLOW = 15 * 60_000;

describe('onnxruntime on webgpu (lavapipe where there is no GPU) agrees with the CPU', function () {
  this.timeout(SLOW);
  let gpu: OnnxRuntimeEngine | undefined;
  let cpu: OnnxRuntimeEngine | undefined;
  let status: EngineStatus | undefined;

  before(async function () {
    gpu = new OnnxRuntimeEngine({ device: 'webgpu', workers: 1, intraOpThreads: 1, log: () => undefined });
    status = await gpu.ready();
    cpu = new OnnxRuntimeEngine({ device: 'cpu', workers: 1, intraOpThreads: 1, log: () => undefined });
    await cpu.ready();
  });

  after(async function () {
    await Promise.all([gpu?.close(), cpu?.close()]);
  });

  function needWebgpu(ctx: Mocha.Context): void {
    if (status?.backend === 'webgpu') return;
    const reason = `no WebGPU adapter: ${status?.note || 'unknown'} (scripts/setup.sh installs Mesa's Vulkan driver)`;
    if (ctx.test) ctx.test.title += ` [pending: ${reason}]`;
    ctx.skip();
  }

  it('reports the device it runs on', function () {
    needWebgpu(this);
    assert.equal(status!.device, 'webgpu:0');
    assert.equal(status!.note, '');
  });

  for (const [file, normalise] of [['vgg11_cifar10.onnx', false], ['resnet20_cifar10.onnx', true]] as const) {
    it(`${file}: logits of 8 CIFAR-10 test images`, async function () {
      needWebgpu(this);
      needShared(this, `models/${file}`, 'datasets/cifar-10-batches-bin/test_batch.bin');
      const { model } = sharedModel(file);
      const { data } = cifarImages(0, 8, normalise);
      const [a, b] = [await gpu!.forward(model, data, 8), await cpu!.forward(model, data, 8)];
      assert.ok(rowRelativeError(a, b, model.classes) < 1e-4, `relative error ${rowRelativeError(a, b, model.classes)}`);
    });
  }

  for (const [file, normalise] of [['vgg11_cifar10.onnx', false], ['resnet20_cifar10.onnx', true]] as const) {
    it(`${file}: guided backprop of 4 channels of the first, a middle and the last conv layer (plain graph: max-pool routing by window taps)`, async function () {
      needWebgpu(this);
      needShared(this, `models/${file}`, 'datasets/cifar-10-batches-bin/test_batch.bin');
      const { model } = sharedModel(file);
      const { data } = cifarImages(3, 1, normalise);
      const last = model.convLayers.length - 1;
      for (const layer of [0, Math.floor(last / 2), last]) {
        const channels = [0, 1, 2, model.convLayers[layer]!.channels - 1];
        const target = { kind: 'conv' as const, layer, channels, objective: 'abs_sum' as const };
        const a = await gpu!.attribute(model, data, target, 'guided');
        const b = await cpu!.attribute(model, data, target, 'guided');
        const err = rowRelativeError(a, b, data.length);
        assert.ok(err < 1e-4, `layer ${layer}: relative error ${err}`);
        assert.ok(relativeError(b, new Float32Array(b.length)) > 0, 'the images are not all zero');
      }
    });
  }

  it('refuses the attribution of a grouped conv with several channels per group (a WebGPU ConvTranspose fault), and runs depthwise', async function () {
    needWebgpu(this);
    const x = Float32Array.from({ length: 144 }, (_, i) => Math.sin(i * 0.3));
    const target = { kind: 'logit' as const, classes: [0, 1] };
    await assert.rejects(gpu!.attribute(engineModel(groupedModel(2), 'grouped-2'), x, target, 'guided'), (e: unknown) => {
      assert.ok(e instanceof IntrospectError && e.kind === 'unimplemented', String(e));
      assert.match(e.message, /conv 'grouped' is grouped \(group 2, 2 output channels per group\).*--device cpu/);
      return true;
    });
    const depthwise = engineModel(groupedModel(4), 'grouped-4');
    const a = await gpu!.attribute(depthwise, x, target, 'guided');
    const b = await cpu!.attribute(depthwise, x, target, 'guided');
    assert.ok(rowRelativeError(a, b, 144) < 1e-4, `depthwise: relative error ${rowRelativeError(a, b, 144)}`);
  });
});
