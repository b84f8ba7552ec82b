/**
 * Bounded memory (issue 14, gaps 2 and 3) over a real loopback server, with the exact inputs of the
 * issue built here by the project's ONNX builder: an input declared 1e6×1e6 is refused at load (it used
 * to load and answer INTERNAL `RangeError: Invalid typed array length`); a tiny ONNX with a 4096×4096
 * input loads, but Predict of 8 images is refused before allocating (it used to pass 3 GB); Evaluate's
 * batch_size 8192 on a 1×224×224 model is capped to what fits the budget (it used to pass 1.5 GB). The
 * budget comes from one place: --memory-budget, else the container's cgroup limit, else a default.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { parseConfig } from '../../server/config';
import { cgroupMemoryLimit, DEFAULT_REQUEST_MEMORY, resolveMemoryBudget } from '../../server/memory-budget';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { encodePng } from '../../services/images/png';
import { grpcError, startTestServer, type TestServer } from '../support/server';
import { mnist } from '../rpc/support';
import { MiB } from './support';

/** x [N, 1, side, side] → 1×1 conv to 2 channels → global average pool → flatten → dense to 10 classes. */
function tinyOnnx(side: number): Uint8Array {
  const b = new OnnxBuilder();
  const x = b.input('x', ['N', 1, side, side]);
  const conv = b.node('Conv', [x, b.floats('w', [0.5, -0.25], [2, 1, 1, 1]), b.floats('b', [0.1, 0.2])]);
  const pooled = b.node('GlobalAveragePool', [conv]);
  const flat = b.node('Flatten', [pooled], { axis: { i: 1 } });
  const w = Array.from({ length: 20 }, (_, i) => ((i * 7) % 11) / 10 - 0.5);
  b.node('Gemm', [flat, b.floats('fc', w, [10, 2]), b.floats('fb', new Array<number>(10).fill(0))], { transB: { i: 1 } }, 'logits');
  b.output('logits');
  return b.encode();
}

/** Peak growth of this process's RSS (the server runs in it) while `fn` runs, in MiB. */
async function peakRssGrowth<T>(fn: () => Promise<T>): Promise<{ value: T | undefined; error: unknown; growthMiB: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const value = await fn();
    return { value, error: undefined, growthMiB: (Math.max(peak, process.memoryUsage().rss) - base) / MiB };
  } catch (error) {
    return { value: undefined, error, growthMiB: (Math.max(peak, process.memoryUsage().rss) - base) / MiB };
  } finally {
    clearInterval(timer);
  }
}

describe('production: memory budget and input size limits', function () {
  this.timeout(180_000);

  it('sizes the budget in one place: --memory-budget, else a quarter of the cgroup limit, else 1 GiB', () => {
    const files = (map: Record<string, string>) => (f: string): string | undefined => map[f];
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': '4294967296\n' })), 4 * 1024 ** 3);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n' })), undefined);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '2147483648' })), 2 * 1024 ** 3);
    assert.equal(cgroupMemoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712' })), undefined);
    assert.equal(cgroupMemoryLimit(files({})), undefined);
    const pod = files({ '/sys/fs/cgroup/memory.max': '4294967296' });
    assert.equal(resolveMemoryBudget({}, pod).requestBytes, 1024 ** 3);
    assert.match(resolveMemoryBudget({}, pod).source, /container's memory limit of 4294967296 bytes/);
    assert.equal(resolveMemoryBudget({ memoryBudget: 123 * MiB }, pod).requestBytes, 123 * MiB);
    assert.equal(resolveMemoryBudget({}, files({})).requestBytes, DEFAULT_REQUEST_MEMORY);
    const p = parseConfig(['--memory-budget', '300MiB'], { INTROSPECT_MAX_INPUT_ELEMENTS: '1M' });
    assert.ok(!p.help);
    assert.equal(p.config.memoryBudget, 300 * MiB);
    assert.equal(p.config.maxInputElements, 1_000_000);
    const d = parseConfig([], {});
    assert.ok(!d.help);
    assert.equal(d.config.memoryBudget, undefined);
    assert.equal(d.config.maxInputElements, 4096 * 4096);
  });

  describe('over a server with a 1 GiB budget', () => {
    let ts: TestServer;
    before(async () => {
      ts = await startTestServer({ config: { memoryBudget: 1024 * MiB } });
    });
    after(async () => {
      await ts?.close();
    });

    it('refuses an input declared 1e6×1e6 at load, by upload and from the model root, naming the input, its shape and the limit', async () => {
      const bytes = tinyOnnx(1_000_000);
      const up = await grpcError(() => ts.client.uploadModel({ name: 'huge' }, bytes));
      assert.equal(up.code, status.RESOURCE_EXHAUSTED);
      assert.match(up.details, /model input 'x' has per-sample shape \[1, 1000000, 1000000\] = 1000000000000 elements, over the server's limit of 16777216 elements per sample \(--max-input-elements\)/);
      fs.writeFileSync(path.join(ts.modelRoot, 'huge.onnx'), bytes);
      const load = await grpcError(() => ts.client.loadModel({ name: 'huge', path: 'huge.onnx' }));
      assert.equal(load.code, status.RESOURCE_EXHAUSTED);
      assert.match(load.details, /model input 'x' has per-sample shape \[1, 1000000, 1000000\]/);
      assert.equal((await ts.client.listModels()).length, 0);
    });

    it('loads a tiny ONNX with a 4096×4096 input, refuses Predict of 8 images before allocating, serves 1', async () => {
      const bytes = tinyOnnx(4096);
      assert.ok(bytes.byteLength < 1024, `a tiny model (${bytes.byteLength} bytes)`);
      await ts.client.uploadModel({ name: 'wide' }, bytes);
      const m = mnist('test');
      const png = (i: number) => encodePng(m.images.subarray(i * 784, (i + 1) * 784), 28, 28, 1);
      const eight = Array.from({ length: 8 }, (_, i) => png(i));
      const refused = await peakRssGrowth(() => ts.client.predict({ model: 'wide', encoded: eight }));
      const e = refused.error as { code: number; details: string };
      assert.equal(e?.code, status.RESOURCE_EXHAUSTED, String(refused.error));
      assert.match(e.details, /^Predict: 8 images of model 'wide' \(input \[1, 4096, 4096\]\) need an estimated 2\.00 GiB \(256\.0 MiB per image with its activations\), over the server's memory budget of 1\.00 GiB per request \(--memory-budget\); send at most 3 images per call/);
      console.log(`      refused Predict of 8 images: peak RSS growth ${refused.growthMiB.toFixed(0)} MiB (the estimate: ${8 * 256} MiB)`);
      assert.ok(refused.growthMiB < 256, `memory grew by ${refused.growthMiB.toFixed(0)} MiB before the refusal`);
      // The raw-pixel tensor path is checked the same way.
      const raw = await grpcError(() => ts.client.predict({ model: 'wide', images: { shape: [8, 28, 28, 1], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(m.images.subarray(0, 8 * 784)) } }));
      assert.equal(raw.code, status.RESOURCE_EXHAUSTED, raw.details);
      assert.match(raw.details, /^Predict: 8 images of model 'wide'/);
      const one = await ts.client.predict({ model: 'wide', encoded: [png(0)] });
      assert.equal(one.predictions.length, 1);
    });
  });

  it('caps Evaluate batch_size 8192 on a 1×224×224 model to what fits the budget', async () => {
    const ts = await startTestServer({ config: { memoryBudget: 256 * MiB } });
    try {
      await ts.client.uploadModel({ name: 'm224' }, tinyOnnx(224));
      await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
      const model = await ts.server.app.models.get('m224');
      // Per image: every value of the graph (input, 2 conv channels, pool, flatten, logits) and the input's
      // copy in the engine worker; two batches in flight (the pipeline).
      const fits = Math.floor(Math.floor((256 * MiB) / ((224 * 224 * 4 + 2 + 2 + 10) * 4)) / 2);
      assert.equal(ts.server.app.memory.batchSize(model, 8192, 256, 'Evaluate'), fits);
      // A first run pays the one-time costs (the engine session, the data set's pixels in memory).
      for await (const _ of ts.client.evaluate({ model: 'm224', dataset: 'mnist', limit: 200, batchSize: 8192 })) void _;
      const steps: number[] = [];
      let prev = 0;
      let count = 0;
      const run = await peakRssGrowth(async () => {
        for await (const u of ts.client.evaluate({ model: 'm224', dataset: 'mnist', limit: 1000, batchSize: 8192 })) {
          steps.push(Number(u.progress!.done) - prev);
          prev = Number(u.progress!.done);
          if (u.result) count = Number(u.result.count);
        }
      });
      assert.equal(run.error, undefined, String(run.error));
      assert.equal(count, 1000);
      assert.ok(steps.filter((s) => s > 0).length >= 3, `several batches (${steps.join(', ')})`);
      assert.ok(steps.every((s) => s <= fits), `every batch within the ${fits} images that fit (${steps.join(', ')})`);
      console.log(`      Evaluate batch_size 8192 → batches of ${fits} (${steps.join(', ')}); peak RSS growth ${run.growthMiB.toFixed(0)} MiB, budget 256 MiB`);
      // Uncapped, the 1000 images would go in one batch (≈ 800 MB of tensors, twice with the pipeline).
      assert.ok(run.growthMiB < 256, `RSS grew by ${run.growthMiB.toFixed(0)} MiB, past the budget`);
    } finally {
      await ts.close();
    }
  });
});
