/**
 * The tfjs engine on device `webgpu` (@tensorflow/tfjs-backend-webgpu on the `webgpu` package's Dawn bindings
 * for Node) against onnxruntime on the CPU, an independent engine. In CI there is no GPU: Mesa's software
 * Vulkan driver (lavapipe, installed by scripts/setup.sh) runs the same shaders. Where no Vulkan device exists
 * (or the optional packages are missing) the suite is pending with the reason.
 *
 * Tolerance: the CPU engines' rule (relative 1e-4 of each row's maximum) for logits and guided backprop.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import type { EngineStatus } from '../../services/engines/engine';
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import { activate } from '../../services/engines/tfjs/backend';
import { needShared } from '../support/shared';
import { runProcess } from '../support/process';
import { cifarImages, relativeError, rowRelativeError, sharedModel } from './support';

const SLOW = 15 * 60_000;

describe('tfjs on webgpu (lavapipe where there is no GPU) agrees with onnxruntime on the CPU', function () {
  this.timeout(SLOW);
  let gpu: TfjsEngine | undefined;
  let cpu: OnnxRuntimeEngine | undefined;
  let status: EngineStatus | undefined;

  before(async function () {
    gpu = new TfjsEngine({ device: 'webgpu', log: () => undefined });
    status = await gpu.ready();
    cpu = new OnnxRuntimeEngine({ device: 'cpu', workers: 1, intraOpThreads: 1, log: () => undefined });
    await cpu.ready();
  });

  after(async function () {
    await Promise.all([gpu?.close(), cpu?.close()]);
    // The rest of the suite's tfjs work runs on a CPU backend.
    await activate('cpu').catch(() => undefined);
  });

  function needWebgpu(ctx: Mocha.Context): void {
    if (status?.backend === 'webgpu') return;
    const reason = `no WebGPU adapter for tfjs: ${status?.note || 'unknown'} (scripts/setup.sh installs Mesa's Vulkan driver)`;
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
    it(`${file}: guided backprop of 4 channels of the first, a middle and the last conv layer`, async function () {
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
});

describe('tfjs asked for webgpu where there is no Vulkan device', function () {
  this.timeout(120_000);

  it('falls back to a CPU backend, says why, and the server would stay NOT_SERVING', async function () {
    // Vulkan's loader finds no driver when pointed at a file that does not exist: the condition is real.
    const env = { ...process.env, VK_DRIVER_FILES: '/nonexistent/icd.json', VK_ICD_FILENAMES: '/nonexistent/icd.json' };
    const r = await runProcess(process.execPath, [path.resolve(__dirname, '..', 'support', 'tfjs-device-child.js')], { env });
    assert.equal(r.code, 0, r.stderr);
    const { status, readiness } = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      status: EngineStatus;
      readiness: { ok: boolean; reason: string };
    };
    assert.notEqual(status.backend, 'webgpu');
    assert.equal(status.device, 'cpu');
    assert.match(status.note, /skipped @tensorflow\/tfjs-backend-webgpu \(no WebGPU adapter/);
    assert.equal(readiness.ok, false);
    assert.match(readiness.reason, /device webgpu was requested but is unavailable \(tfjs: using .*; start with --allow-cpu-fallback/);
  });
});
