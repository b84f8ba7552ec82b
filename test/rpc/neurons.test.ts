/**
 * NeuronImages over a real server on the bundled MNIST CNN: onnxruntime images checked against the
 * tfjs engine's, every input form giving the same images, integrated gradients' completeness against
 * onnxruntime logits of the model file, bad requests, and client cancellation stopping the work.
 */
import * as assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { PNG } from 'pngjs';
import {
  AttributionMethod,
  NeuronObjective,
  type NeuronImage,
  type NeuronImagesRequest,
} from '../../api/generated/introspect/v1/analysis';
import { ElementType, Engine, Split } from '../../api/generated/introspect/v1/common';
import type { DeepPartial } from '../../api/generated/introspect/v1/models';
import type { Engine as EngineApi } from '../../services/engines/engine';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { PLANE, counter, floats, maxAbs, maxAbsDiff, mnist, mnistInput, referenceLogits, tensorOf, until } from './support';

type Req = DeepPartial<NeuronImagesRequest>;

describe('rpc: NeuronImages (bundled MNIST CNN)', function () {
  this.timeout(120_000);
  let ts: TestServer;
  const images = (req: Req): Promise<NeuronImage[]> => collect(ts.client.neuronImages({ model: 'cnn', ...req }));
  const sample0 = (): Req['input'] => ({ source: { $case: 'tensor', value: tensorOf(mnistInput('test', 0), [1, 28, 28]) } });

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  it('guided backprop on onnxruntime matches the tfjs engine, class logits first, with progress', async () => {
    const req: Req = { input: sample0(), layers: [{ layer: 1, channels: [0, 3, 7] }, { layer: 2, start: 60 }], classes: [7] };
    const ort = await images({ ...req, engine: Engine.ENGINE_ONNXRUNTIME });
    const tfjs = await images({ ...req, engine: Engine.ENGINE_TFJS });
    assert.deepEqual(ort.map((m) => [m.layer, m.neuron]), [[-1, 7], [1, 0], [1, 3], [1, 7], [2, 60], [2, 61], [2, 62], [2, 63]]);
    assert.deepEqual(ort.map((m) => m.progress), ort.map((_, i) => ({ done: i + 1, total: 8 })));
    ort.forEach((m, i) => {
      const a = floats(m.image?.tensor);
      const b = floats(tfjs[i]!.image?.tensor);
      assert.deepEqual(m.image?.tensor?.shape, [1, 28, 28]);
      assert.equal(m.allZero, a.every((v) => v === 0));
      const scale = Math.max(maxAbs(a), maxAbs(b), 1e-12);
      assert.ok(maxAbsDiff(a, b) / scale < 1e-4, `layer ${m.layer} neuron ${m.neuron}: engines differ by ${maxAbsDiff(a, b) / scale} of the peak`);
    });
    assert.ok(ort.some((m) => !m.allZero), 'some images are not all zero');
  });

  it('a sample, float and uint8 tensors, a PNG and a class average feed the same input', async () => {
    const m = mnist('test');
    const raw = m.images.subarray(0, PLANE);
    const png = PNG.sync.write(Object.assign(new PNG({ width: 28, height: 28 }), { data: Buffer.from(Array.from(raw).flatMap((v) => [v, v, v, 255])) }));
    const layers = [{ layer: 0, channels: [2, 9] }];
    const inputs: Array<Req['input']> = [
      sample0(),
      { source: { $case: 'sample', value: { dataset: 'mnist', split: Split.SPLIT_TEST, index: 0 } } },
      { source: { $case: 'tensor', value: { shape: [28, 28, 1], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(raw) } } },
      { source: { $case: 'encoded', value: png } },
    ];
    const results: NeuronImage[][] = [];
    for (const input of inputs) results.push(await images({ input, layers }));
    for (const r of results.slice(1)) {
      r.forEach((msg, i) => assert.ok(maxAbsDiff(floats(msg.image?.tensor), floats(results[0]![i]!.image?.tensor)) < 1e-6));
    }
    const [average] = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [5], average: { split: Split.SPLIT_TEST } }));
    const fromRef = await images({ input: { source: { $case: 'classAverage', value: { dataset: 'mnist', classIndex: 5, average: { split: Split.SPLIT_TEST } } } }, layers });
    const fromTensor = await images({ input: { source: { $case: 'tensor', value: average!.image!.tensor! } }, layers });
    fromRef.forEach((msg, i) => assert.ok(maxAbsDiff(floats(msg.image?.tensor), floats(fromTensor[i]!.image?.tensor)) < 1e-6));
  });

  it('omit_tensor with png sends a PNG (grey at zero) and the all-zero flag only', async () => {
    const got = await images({ input: sample0(), layers: [{ layer: 2 }], png: true, omitTensor: true });
    const full = await images({ input: sample0(), layers: [{ layer: 2 }] });
    assert.equal(got.length, 64);
    got.forEach((msg, i) => {
      assert.equal(msg.image?.tensor, undefined);
      const img = PNG.sync.read(msg.image!.png);
      assert.equal(img.width, 28);
      const values = floats(full[i]!.image?.tensor);
      assert.equal(msg.allZero, values.every((v) => v === 0));
      const peak = maxAbs(values);
      // The PNG maps 0 to mid grey and ±peak to 255 / 0.
      const expected = Array.from(values, (v) => (peak > 0 ? Math.round(Math.min(255, Math.max(0, 127.5 + (v * 127.5) / peak))) : 128));
      const shown = Array.from({ length: PLANE }, (_, p) => img.data[p * 4]!);
      assert.ok(maxAbsDiff(shown, expected) <= 1, `neuron ${msg.neuron}: PNG pixels`);
    });
  });

  it('integrated gradients of a class logit sum to the logit difference (onnxruntime on the file)', async () => {
    const x = mnistInput('test', 1);
    const [ig] = await images({
      input: { source: { $case: 'tensor', value: tensorOf(x, [1, 28, 28]) } },
      layers: [{ layer: 0, channels: [0] }],
      classes: [2],
      attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 128, objective: NeuronObjective.NEURON_OBJECTIVE_ABS_SUM },
    });
    assert.equal(ig!.layer, -1);
    const sum = floats(ig!.image?.tensor).reduce((s, v) => s + v, 0);
    const logits = await referenceLogits(Float32Array.from([...x, ...new Float32Array(PLANE)]), 2);
    const delta = logits[2]! - logits[12]!;
    assert.ok(Math.abs(sum - delta) < 0.03 * Math.abs(delta) + 1e-3, `sum of IG ${sum} vs logit difference ${delta}`);
  });

  it('bad requests are INVALID_ARGUMENT naming the field', async () => {
    const cases: Array<[Req, RegExp]> = [
      [{ input: sample0(), layers: [{ layer: 3 }] }, /layers\[0\]\.layer = 3: no such conv layer/],
      [{ input: sample0(), layers: [{ layer: 0 }, { layer: 1, channels: [4, 32] }] }, /layers\[1\]\.channels\[1\] = 32 is out of range/],
      [{ input: sample0(), layers: [{ layer: 0, start: 4, end: 17 }] }, /layers\[0\]\.end = 17/],
      [{ input: sample0(), layers: [{ layer: 0, channels: [1], end: 3 }] }, /layers\[0\]: give either channels or a start\/end range/],
      [{ input: sample0(), classes: [10] }, /classes\[0\] = 10/],
      [{ input: sample0(), attribution: { method: 9 as AttributionMethod } }, /attribution\.method/],
      [{ input: sample0(), attribution: { objective: 5 as NeuronObjective } }, /attribution\.objective/],
      [{ input: sample0(), attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igBaseline: tensorOf(new Float32Array(10), [10]) } }, /attribution\.ig_baseline\.shape/],
      [{}, /input is required/],
      [{ input: { source: { $case: 'tensor', value: tensorOf(new Float32Array(28 * 27), [1, 28, 27]) } } }, /input\.tensor\.shape \[1, 28, 27\]/],
      [{ input: { source: { $case: 'tensor', value: tensorOf(new Float32Array(10), [1, 28, 28]) } } }, /input\.tensor: shape \[1, 28, 28\] needs 3136 bytes/],
      [{ input: { source: { $case: 'encoded', value: Buffer.from('not an image') } } }, /input\.encoded: not a PNG or JPEG/],
      [{ input: { source: { $case: 'sample', value: { dataset: 'mnist', index: 10_000 } } } }, /input\.sample\.index = 10000/],
      [{ input: { source: { $case: 'classAverage', value: { dataset: 'mnist', classIndex: 11 } } } }, /input\.class_average\.class_index\[0\] = 11/],
    ];
    for (const [req, re] of cases) {
      const err = await grpcError(() => images(req));
      assert.equal(err.code, status.INVALID_ARGUMENT, `${re}: ${err.details}`);
      assert.match(err.details, re);
    }
    const missing = await grpcError(() => images({ input: { source: { $case: 'sample', value: { dataset: 'nodata', index: 0 } } } }));
    assert.equal(missing.code, status.NOT_FOUND);
    assert.match(missing.details, /nodata/);
  });

  it('cancelling the stream stops the engine work; the server keeps serving', async () => {
    const app = ts.server.app;
    const ort: EngineApi = app.engines.onnxruntime;
    const attribute = ort.attribute;
    let calls = 0;
    let active = 0;
    // Count the engine's attribution calls (the real engine still does the work).
    ort.attribute = async (...args: Parameters<EngineApi['attribute']>) => {
      calls++;
      active++;
      try {
        return await attribute.apply(ort, args);
      } finally {
        active--;
      }
    };
    try {
      const steps = 256; // each layer is one chunk: `steps` engine calls per layer, three layers
      const controller = new AbortController();
      const stream = ts.client.neuronImages(
        { model: 'cnn', input: sample0(), attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: steps } },
        { signal: controller.signal },
      );
      const first = await stream.next();
      assert.equal(first.done, false);
      assert.equal(first.value!.layer, 0);
      controller.abort();
      await stream.return(undefined);
      await until(() => app.rpc.calls.size === 0 && active === 0, 'the call and its engine work to end');
      const settled = calls;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(calls, settled, 'no engine calls after the call ended');
      assert.ok(calls < 2 * steps, `${calls} engine calls: the work stopped within layer 1 (a full run takes ${3 * steps})`);
      const text = await (await fetch(ts.metricsUrl)).text();
      assert.equal(counter(text, 'grpc_server_handled_total', { grpc_type: 'server_stream', grpc_service: 'introspect.v1.AnalysisService', grpc_method: 'NeuronImages', grpc_code: 'CANCELLED' }), 1);
    } finally {
      ort.attribute = attribute;
    }
    const after = await images({ input: sample0(), layers: [{ layer: 0, channels: [1] }] });
    assert.equal(after.length, 1, 'the server still answers');
  });
});
