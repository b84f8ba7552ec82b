/**
 * `--device webgpu` end to end: a server on WebGPU (lavapipe where there is no GPU) and one on the CPU, the same
 * requests to both over loopback, through the RPCs and the CLI: model info names the device, similarity values
 * (methods 1 and 2) and a pruning evaluation agree. Pending with the provider's reason where no Vulkan device
 * exists (scripts/setup.sh installs Mesa's).
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { PruneCriterion, SimilarityMethod, type LayerSimilarity, type PruneResponse, type SimilarityResponse } from '../../api/generated/introspect/v1/analysis';
import { Engine, Split } from '../../api/generated/introspect/v1/common';
import { needShared, sharedPath } from '../support/shared';
import { runProcess } from '../support/process';
import { collect, startTestServer, type TestServer } from '../support/server';

const CLI = path.resolve(__dirname, '..', '..', 'clients', 'cli', 'main.js');
const TOL = 2e-4;

const cli = (args: string[]) => runProcess(process.execPath, [CLI, ...args]);

const layersOf = (msgs: SimilarityResponse[]): LayerSimilarity[] => msgs.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));

describe('rpc: --device webgpu agrees with the CPU through the RPCs and the CLI', function () {
  this.timeout(15 * 60_000);
  const servers: Record<'gpu' | 'cpu', TestServer | undefined> = { gpu: undefined, cpu: undefined };

  before(async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const files = { models: [sharedPath('models/resnet20_cifar10.onnx')], data: [sharedPath('datasets/cifar-10-batches-bin')] };
    servers.gpu = await startTestServer({ ...files, config: { device: 'webgpu' } });
    const status = servers.gpu.server.app.engineStatuses().find((s) => s.kind === 'onnxruntime')!;
    if (status.backend !== 'webgpu') {
      const reason = `no WebGPU adapter: ${status.note} (scripts/setup.sh installs Mesa's Vulkan driver)`;
      if (this.currentTest) this.currentTest.parent!.title += ` [pending: ${reason}]`;
      this.skip();
    }
    servers.cpu = await startTestServer(files);
    for (const ts of [servers.gpu, servers.cpu]) {
      await ts.client.loadModel({ name: 'resnet', path: 'resnet20_cifar10.onnx' });
      await ts.client.registerDataset({ name: 'cifar', path: 'cifar-10-batches-bin' });
    }
  });

  after(async function () {
    await Promise.all([servers.gpu?.close(), servers.cpu?.close()]);
  });

  it('serves, and model info (RPC and CLI) names the device', async function () {
    const ts = servers.gpu!;
    assert.equal(ts.server.health.isServing(), true);
    const info = await ts.client.getModel('resnet');
    // both engines take the device: onnxruntime's WebGPU provider and tfjs-backend-webgpu
    for (const kind of [Engine.ENGINE_ONNXRUNTIME, Engine.ENGINE_TFJS]) {
      assert.ok(info.engines.some((e) => e.engine === kind && e.device === 'webgpu:0'), `${kind}: ${JSON.stringify(info.engines)}`);
    }
    const r = await cli(['models', 'info', 'resnet', `--server=${ts.address}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /webgpu:0/);
  });

  it('similarity, methods 1 and 2, on an early, a middle and the last layer', async function () {
    for (const method of [SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE, SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP]) {
      const req = { model: 'resnet', dataset: 'cifar', average: { split: Split.SPLIT_TEST }, classes: [3], layers: [0, 10, 18], method };
      const [gpu, cpu] = [layersOf(await collect(servers.gpu!.client.similarity(req))), layersOf(await collect(servers.cpu!.client.similarity(req)))];
      assert.deepEqual(gpu.map((l) => [l.layer, l.values.length]), [[0, 16], [10, 32], [18, 64]]);
      gpu.forEach((l, i) => {
        const want = cpu[i]!;
        l.values.forEach((v, k) => assert.ok(Math.abs(v - want.values[k]!) < TOL, `method ${method} layer ${l.layer} channel ${k}: ${v} vs ${want.values[k]}`));
        assert.deepEqual(l.dead, want.dead, `layer ${l.layer}: dead channels`);
      });
    }
  });

  it('a pruning evaluation (L1, half of the first layer, run-time channel mask)', async function () {
    const req = { model: 'resnet', dataset: 'cifar', layers: [0], fractions: [0.5], criteria: [PruneCriterion.PRUNE_CRITERION_L1], limit: 100 };
    const results = async (ts: TestServer): Promise<PruneResponse[]> => (await collect(ts.client.prune(req))).filter((m) => m.result !== undefined);
    const [gpu, cpu] = [await results(servers.gpu!), await results(servers.cpu!)];
    assert.ok(gpu.length > 0);
    assert.deepEqual(gpu.map((m) => m.result!.pruned), cpu.map((m) => m.result!.pruned), 'the same channels pruned');
    // float32 sums in another order may flip an image whose two top logits are within rounding: one image at most
    gpu.forEach((m, i) => assert.ok(Math.abs(m.result!.accuracy - cpu[i]!.result!.accuracy) <= 0.01 + 1e-9, `${m.result!.accuracy} vs ${cpu[i]!.result!.accuracy}`));
  });
});
