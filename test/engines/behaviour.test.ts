/**
 * How the engines behave around the numbers: the CUDA fallback, chunking (order, duplicates, several workers),
 * cancellation, argument errors, release, and tfjs memory staying flat.
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { IntrospectError } from '../../services/errors';
import { createEngines, type Engines } from '../../services/engines';
import { attributionRowBytes, planChunks } from '../../services/engines/chunks';
import type { AttributionTarget, Engine } from '../../services/engines/engine';
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import { TensorProgram } from '../../services/engines/tfjs/interpret';
import { buildAttribution, type AttributionSpec } from '../../services/graph/backward';
import { opCounts } from '../../services/graph/tensor-graph';
import { NO_PASSES } from '../../services/graph/passes';
import { needShared } from '../support/shared';
import { cifarImages, relativeError, rowRelativeError, sharedModel } from './support';

const KINDS = ['onnxruntime', 'tfjs'] as const;

async function rejectsWith(p: Promise<unknown>, kind: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IntrospectError, `expected an IntrospectError, got ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/** Turns the event loop until `done()` holds. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((r) => setImmediate(r));
}

describe('engines: behaviour', function () {
  let engines: Engines;

  before(async function () {
    engines = createEngines({ onnxruntime: { workers: 1, intraOpThreads: 1 }, log: () => undefined });
    await engines.ready();
  });

  after(async function () {
    await engines?.close();
  });

  it('onnxruntime: device cuda falls back to the CPU, logs why, reports it in status().note, and still computes', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const logged: string[] = [];
    const cuda = new OnnxRuntimeEngine({ device: 'cuda', workers: 1, intraOpThreads: 1, log: (m) => logged.push(m) });
    try {
      const status = await cuda.ready();
      assert.equal(status.backend, 'cpu');
      assert.equal(status.device, 'cpu');
      assert.match(status.note, /CUDA execution provider unavailable, using CPU: .+/);
      assert.ok(logged.some((m) => m.includes(status.note)), 'the reason is logged');
      const { model } = sharedModel('resnet20_cifar10.onnx');
      const { data } = cifarImages(0, 2, true);
      const a = await cuda.forward(model, data, 2);
      const b = await engines.onnxruntime.forward(model, data, 2);
      assert.ok(relativeError(a, b) < 1e-6);
    } finally {
      await cuda.close();
    }
    assert.equal(engines.onnxruntime.status().note, '', 'a cpu engine reports no fallback');
  });

  it('tfjs: reports the backend it chose and why better ones were skipped', function () {
    const s = engines.tfjs.status();
    assert.equal(s.kind, 'tfjs');
    assert.ok(['tensorflow', 'wasm', 'cpu'].includes(s.backend));
    if (s.backend !== 'tensorflow') assert.match(s.note, /skipped @tensorflow\/tfjs-node-gpu/);
  });

  for (const kind of KINDS) {
    it(`${kind}: many small chunks give the same rows, in target order, duplicates included`, async function () {
      needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const { model } = sharedModel('vgg11_cifar10.onnx');
      const { data } = cifarImages(3, 1, false);
      const channels = [9, 2, 9, 40, 0, 17, 2];
      // A budget of about one row per chunk (two workers for onnxruntime).
      const small: Engine =
        kind === 'onnxruntime'
          ? new OnnxRuntimeEngine({ workers: 2, intraOpThreads: 1, memoryBudgetBytes: 4e6, log: () => undefined })
          : new TfjsEngine({ memoryBudgetBytes: 2e6, log: () => undefined });
      try {
        const target = { kind: 'conv' as const, layer: 2, channels, objective: 'abs_sum' as const };
        const chunked = await small.attribute(model, data, target, 'guided');
        const whole = await engines.engineFor(kind).attribute(model, data, target, 'guided');
        assert.ok(rowRelativeError(chunked, whole, data.length) < 1e-5);
        const single = await engines.engineFor(kind).attribute(model, data, { ...target, channels: [40] }, 'guided');
        assert.ok(relativeError(chunked.subarray(3 * data.length, 4 * data.length), single) < 1e-5, 'row 3 is channel 40');
        assert.ok(relativeError(chunked.subarray(0, data.length), chunked.subarray(2 * data.length, 3 * data.length)) === 0);
        if (small instanceof OnnxRuntimeEngine) assert.ok(small.poolCounters().dispatched >= 4, 'the work was split');
      } finally {
        await small.close();
      }
    });

    it(`${kind}: an aborted signal rejects with cancelled`, async function () {
      needShared(this, 'models/resnet20_cifar10.onnx');
      const { model } = sharedModel('resnet20_cifar10.onnx');
      const { data } = cifarImages(0, 1, true);
      const ctl = new AbortController();
      ctl.abort();
      await rejectsWith(engines.engineFor(kind).forward(model, data, 1, { signal: ctl.signal }), 'cancelled');
      await rejectsWith(
        engines.engineFor(kind).attribute(model, data, { kind: 'logit', classes: [1] }, 'guided', { signal: ctl.signal }),
        'cancelled',
      );
    });

    it(`${kind}: requests that do not fit the model are invalid arguments`, async function () {
      needShared(this, 'models/resnet20_cifar10.onnx');
      const { model } = sharedModel('resnet20_cifar10.onnx');
      const e = engines.engineFor(kind);
      const one = new Float32Array(3 * 32 * 32);
      await rejectsWith(e.forward(model, new Float32Array(100), 1), 'invalid-argument', /100 floats/);
      await rejectsWith(e.activations(model, one, 1, [19]), 'invalid-argument', /conv layer 19/);
      await rejectsWith(e.attribute(model, one, { kind: 'conv', layer: 0, channels: [16], objective: 'abs_sum' }, 'guided'), 'invalid-argument', /channel 16/);
      await rejectsWith(e.attribute(model, one, { kind: 'logit', classes: [10] }, 'guided'), 'invalid-argument', /class 10/);
      await rejectsWith(e.forward(model, one, 1, { mask: new Map([[0, Uint32Array.of(16)]]) }), 'invalid-argument', /mask channel 16/);
      await rejectsWith(e.attribute(model, one, { kind: 'logit', classes: [0] }, 'sideways' as never), 'invalid-argument', /rule/);
    });
  }

  it('onnxruntime: cancelling mid-way stops dispatching chunks and rejects; the engine keeps working', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('vgg11_cifar10.onnx');
    const { data } = cifarImages(4, 1, false);
    const budget = 1.2e6;
    const e = new OnnxRuntimeEngine({ workers: 1, intraOpThreads: 1, memoryBudgetBytes: budget, log: () => undefined });
    try {
      const channels = Array.from({ length: 64 }, (_, i) => i);
      const total = planChunks(64, attributionRowBytes(model.graph, model.convLayers[0]!.output), budget, 1).length;
      assert.ok(total >= 16, `${total} chunks`);
      const ctl = new AbortController();
      const run = e.attribute(model, data, { kind: 'conv', layer: 0, channels, objective: 'abs_sum' }, 'guided', { signal: ctl.signal });
      const outcome = run.then(
        () => 'resolved',
        (err: unknown) => err,
      );
      await until(() => e.poolCounters().completed >= 1);
      ctl.abort();
      const err = await outcome;
      assert.ok(err instanceof IntrospectError && err.kind === 'cancelled', `rejected with ${String(err)}`);
      const { dispatched } = e.poolCounters();
      assert.ok(dispatched < total, `dispatched ${dispatched} of ${total} chunks`);
      const logits = await e.forward(model, data, 1);
      assert.equal(logits.length, 10);
    } finally {
      await e.close();
    }
  });

  it('tfjs: cancelling mid-way rejects with cancelled', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('vgg11_cifar10.onnx');
    const { data } = cifarImages(4, 1, false);
    const e = new TfjsEngine({ memoryBudgetBytes: 1e6, log: () => undefined });
    try {
      const ctl = new AbortController();
      const channels = Array.from({ length: 64 }, (_, i) => i);
      const run = e.attribute(model, data, { kind: 'conv', layer: 0, channels, objective: 'abs_sum' }, 'guided', { signal: ctl.signal });
      setImmediate(() => ctl.abort());
      await rejectsWith(run, 'cancelled');
    } finally {
      await e.close();
    }
  });

  it('tfjs: the interpreted plain graph (ConvTranspose conv backward) equals the engine\'s (its device passes: flipped-kernel convs)', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(5, 1, true);
    await engines.tfjs.attribute(model, data, { kind: 'logit', classes: [0] }, 'gradient'); // the backend is active
    // Layer 13 is behind two stride-2 convs; the logit target runs through every conv.
    const cases: Array<[AttributionSpec, AttributionTarget]> = [
      [{ target: 'conv', layer: 13, objective: 'abs_sum' }, { kind: 'conv', layer: 13, channels: [4, 60], objective: 'abs_sum' }],
      [{ target: 'logit' }, { kind: 'logit', classes: [6] }],
    ];
    for (const [spec, target] of cases) {
      assert.ok(engines.tfjs.passes.has('flipped-conv'));
      const graph = buildAttribution(model.graph, spec, 'gradient', { passes: NO_PASSES });
      assert.ok((opCounts(graph).get('ConvTranspose') ?? 0) > 0);
      const width = spec.target === 'conv' ? 64 : 10;
      const sel = new Float32Array(target.kind === 'conv' ? 2 * width : width);
      if (target.kind === 'conv') target.channels.forEach((c, i) => (sel[i * width + c] = 1));
      else sel[6] = 1;
      const program = new TensorProgram(graph);
      const x = tf.tensor(data, [1, 3, 32, 32]);
      const select = tf.tensor2d(sel, [sel.length / width, width]);
      let a: Float32Array;
      try {
        const out = program.run({ input: x, select }).get('attribution')!;
        a = (await out.data()) as Float32Array;
        out.dispose();
      } finally {
        program.dispose();
        x.dispose();
        select.dispose();
      }
      const b = await engines.tfjs.attribute(model, data, target, 'gradient');
      assert.ok(rowRelativeError(a, b, data.length) < 1e-5, JSON.stringify(target));
    }
  });

  it('tfjs: a model released while a call uses it keeps its weights until the call ends', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(8, 1, true);
    const e = new TfjsEngine({ maxChunkRows: 1, log: () => undefined });
    try {
      await e.ready();
      const target = { kind: 'conv' as const, layer: 9, channels: [0, 1, 2, 3, 4, 5], objective: 'abs_sum' as const };
      const want = await engines.tfjs.attribute(model, data, target, 'guided');
      const baseline = tf.memory().numTensors;
      const running = e.attribute(model, data, target, 'guided');
      await new Promise((r) => setImmediate(r));
      await e.release(model.id);
      const got = await running;
      assert.ok(rowRelativeError(got, want, data.length) < 1e-6);
      assert.equal(tf.memory().numTensors, baseline, 'the released weights are freed once the call is done');
    } finally {
      await e.close();
    }
  });

  it('onnxruntime: release drops the sessions; the next call sends the graph again', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(0, 1, true);
    const e = engines.onnxruntime;
    const first = await e.forward(model, data, 1);
    const sent = e.poolCounters().graphsSent;
    await e.forward(model, data, 1);
    assert.equal(e.poolCounters().graphsSent, sent, 'a cached session is reused');
    await e.release(model.id);
    const again = await e.forward(model, data, 1);
    assert.equal(e.poolCounters().graphsSent, sent + 1);
    assert.deepEqual(again, first);
  });

  it('onnxruntime: workers evict least recently used sessions beyond their byte budget', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(0, 1, true);
    // Room for one resnet20 graph (about 1 MB) at a time.
    const e = new OnnxRuntimeEngine({ workers: 1, intraOpThreads: 1, sessionBytesPerWorker: 1.5e6, log: () => undefined });
    try {
      const logits = await e.forward(model, data, 1);
      await e.attribute(model, data, { kind: 'logit', classes: [0] }, 'guided');
      assert.equal(e.poolCounters().graphsSent, 2);
      assert.deepEqual(await e.forward(model, data, 1), logits);
      assert.equal(e.poolCounters().graphsSent, 3, 'the forward session was evicted and is sent again');
    } finally {
      await e.close();
    }
  });

  it('tfjs: memory stays flat across calls and returns to the baseline on release', async function () {
    needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { model } = sharedModel('resnet20_cifar10.onnx');
    const { data } = cifarImages(0, 2, true);
    const e = engines.tfjs;
    await e.release(model.id);
    const baseline = tf.memory().numTensors;
    const call = async (): Promise<void> => {
      await e.forward(model, data, 2);
      await e.activations(model, data, 2, [0, 5], { mask: new Map([[1, Uint32Array.of(3)]]) });
      await e.attribute(model, data.subarray(0, 3072), { kind: 'conv', layer: 7, channels: [1, 2], objective: 'abs_sum' }, 'guided');
      await e.attribute(model, data.subarray(0, 3072), { kind: 'logit', classes: [3] }, 'deconv');
    };
    await call();
    const warm = tf.memory().numTensors;
    await call();
    await call();
    assert.equal(tf.memory().numTensors, warm, 'no tensors leak per call');
    await e.release(model.id);
    assert.equal(tf.memory().numTensors, baseline, 'release frees the cached weights');
  });
});
