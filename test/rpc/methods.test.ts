/**
 * Attribution methods as base rule + wrappers, over a real server on the bundled MNIST CNN, on both
 * engines. Each wrapped method is checked against a reference built in this file (float64) from the
 * plain base rule computed through the API one input per call: SmoothGrad's three forms over the noisy
 * copies (services/methods/noise.ts, checked against its documented formula in test/methods/noise.test.ts),
 * integrated gradients over the interpolated inputs, input × gradient, and their compositions.
 * Integrated gradients keeps today's numbers: the named method equals the wrapper over the gradient bit
 * for bit. Bad parameters are INVALID_ARGUMENT naming the field.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status } from '@grpc/grpc-js';
import type { CliIo } from '../../clients/cli/context';
import { runCli } from '../../clients/cli/main';
import {
  AttributionMethod,
  SmoothGradForm,
  type AttributionWrapper,
  type LayerSimilarity,
  type NeuronImage,
  type NeuronImagesRequest,
  type SimilarityResponse,
} from '../../api/generated/introspect/v1/analysis';
import { Engine, Split } from '../../api/generated/introspect/v1/common';
import type { DeepPartial } from '../../api/generated/introspect/v1/models';
import type { Engine as EngineApi } from '../../services/engines/engine';
import { decodePixels, gridPng } from '../../services/images/png';
import { noisyInputs } from '../../services/methods/noise';
import { BUNDLED_MODEL, collect, grpcError, startTestServer, type TestServer } from '../support/server';
import { floats, maxAbs, mnistInput, plainCosine, tensorOf } from './support';

type Req = DeepPartial<NeuronImagesRequest>;
type Form = 'mean' | 'squared' | 'variance';
type W =
  | { kind: 'smoothgrad'; samples: number; noiseLevel: number; seed: number; form: Form }
  | { kind: 'ig'; steps: number; baseline?: Float32Array }
  | { kind: 'ixg' };

const SHAPE = [1, 28, 28];
const FORMS: Record<Form, SmoothGradForm> = {
  mean: SmoothGradForm.SMOOTH_GRAD_FORM_MEAN,
  squared: SmoothGradForm.SMOOTH_GRAD_FORM_SQUARED,
  variance: SmoothGradForm.SMOOTH_GRAD_FORM_VARIANCE,
};
const BASES = {
  guided: AttributionMethod.ATTRIBUTION_METHOD_GUIDED_BACKPROP,
  deconv: AttributionMethod.ATTRIBUTION_METHOD_DECONVNET,
  gradient: AttributionMethod.ATTRIBUTION_METHOD_GRADIENT,
} as const;
type Base = keyof typeof BASES;
const ENGINES = { onnxruntime: Engine.ENGINE_ONNXRUNTIME, tfjs: Engine.ENGINE_TFJS } as const;

function wire(w: W): DeepPartial<AttributionWrapper> {
  switch (w.kind) {
    case 'smoothgrad':
      return { wrapper: { $case: 'smoothgrad', value: { samples: w.samples, noiseLevel: w.noiseLevel, seed: w.seed, form: FORMS[w.form] } } };
    case 'ig':
      return { wrapper: { $case: 'integratedGradients', value: { steps: w.steps, baseline: w.baseline && tensorOf(w.baseline, SHAPE) } } };
    case 'ixg':
      return { wrapper: { $case: 'inputXGradient', value: {} } };
  }
}

describe('rpc: attribution methods as base rule + wrappers (bundled MNIST CNN)', function () {
  this.timeout(300_000);
  let ts: TestServer;
  const x0 = mnistInput('test', 0);
  // Two channels of conv layer 1 and one class logit: two chunks (logits, layer 1) per input.
  const neurons = { layers: [{ layer: 1, channels: [0, 3] }], classes: [7] };
  const images = (req: Req): Promise<NeuronImage[]> => collect(ts.client.neuronImages({ model: 'cnn', ...neurons, ...req }));
  const input = (x: Float32Array): Req['input'] => ({ source: { $case: 'tensor', value: tensorOf(x, SHAPE) } });

  /** Images of the request's neurons under `base` + `wrappers`, through the server. */
  async function served(engine: Engine, base: Base, wrappers: W[], x = x0): Promise<Float32Array[]> {
    const got = await images({ engine, input: input(x), attribution: { method: BASES[base], wrappers: wrappers.map(wire) } });
    assert.deepEqual(got.map((m) => [m.layer, m.neuron]), [[-1, 7], [1, 0], [1, 3]]);
    return got.map((m) => floats(m.image?.tensor));
  }

  /** The same from the plain base rule through the API, one input per call, composed here in float64. */
  async function reference(engine: Engine, base: Base, wrappers: W[], x: Float32Array): Promise<Float64Array[]> {
    if (wrappers.length === 0) return (await served(engine, base, [], x)).map((a) => Float64Array.from(a));
    const w = wrappers[wrappers.length - 1]!;
    const inner = wrappers.slice(0, -1);
    switch (w.kind) {
      case 'smoothgrad': {
        const runs: Float64Array[][] = [];
        for (const noisy of noisyInputs(x, w)) runs.push(await reference(engine, base, inner, noisy));
        return runs[0]!.map((_, b) =>
          Float64Array.from(runs[0]![b]!, (_v, i) => {
            const values = runs.map((r) => r[b]![i]!);
            const mean = values.reduce((s, v) => s + v, 0) / values.length;
            if (w.form === 'mean') return mean;
            if (w.form === 'squared') return values.reduce((s, v) => s + v * v, 0) / values.length;
            return values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length;
          }),
        );
      }
      case 'ig': {
        const b0 = w.baseline ?? new Float32Array(x.length);
        // The points in float32 as documented, x' + (m/M)·(x − x') with x − x' rounded first: max pooling
        // breaks ties between equal inputs (MNIST's background) by position, so one ulp can move a switch.
        const delta = Float32Array.from(x, (v, i) => v - b0[i]!);
        let sum: Float64Array[] | undefined;
        for (let m = 1; m <= w.steps; m++) {
          const point = Float32Array.from(delta, (d, i) => b0[i]! + (m / w.steps) * d);
          const at = await reference(engine, base, inner, point);
          sum ??= at.map((a) => new Float64Array(a.length));
          at.forEach((a, b) => a.forEach((v, i) => (sum![b]![i] += v)));
        }
        return sum!.map((s) => s.map((v, i) => (delta[i]! * v) / w.steps));
      }
      case 'ixg':
        return (await reference(engine, base, inner, x)).map((a) => a.map((v, i) => x[i]! * v));
    }
  }

  function assertClose(got: Float32Array[], want: Float64Array[], what: string, tolerance = 1e-5): void {
    assert.equal(got.length, want.length);
    got.forEach((g, b) => {
      const peak = Math.max(maxAbs(want[b]!), 1e-12);
      let worst = 0;
      g.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[b]![i]!))));
      assert.ok(worst / peak < tolerance, `${what}, image ${b}: differs from the reference by ${(worst / peak).toExponential(2)} of its peak ${peak.toExponential(3)}`);
    });
    assert.ok(want.some((w) => maxAbs(w) > 0), `${what}: some reference image is not all zero`);
  }

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL] });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
  });
  after(async () => {
    await ts?.close();
  });

  for (const [engineName, engine] of Object.entries(ENGINES)) {
    describe(`on ${engineName}`, () => {
      it('SmoothGrad with a fixed seed is the mean / mean of squares / variance of guided backprop over the noisy inputs, one per call', async () => {
        for (const form of ['mean', 'squared', 'variance'] as const) {
          const sg: W = { kind: 'smoothgrad', samples: 5, noiseLevel: 0.2, seed: 11, form };
          assertClose(await served(engine, 'guided', [sg]), await reference(engine, 'guided', [sg], x0), `SmoothGrad ${form}`);
        }
      });

      it('SmoothGrad over each base rule matches its reference; the same seed replays, another seed differs', async () => {
        for (const base of Object.keys(BASES) as Base[]) {
          const sg: W = { kind: 'smoothgrad', samples: 4, noiseLevel: 0.1, seed: 3, form: 'mean' };
          const got = await served(engine, base, [sg]);
          assertClose(got, await reference(engine, base, [sg], x0), `SmoothGrad over ${base}`);
          assert.deepEqual(await served(engine, base, [sg]), got, `SmoothGrad over ${base} replays with its seed`);
          const other = await served(engine, base, [{ ...sg, seed: 4 }]);
          assert.ok(other.some((a, b) => a.some((v, i) => v !== got[b]![i])), `SmoothGrad over ${base}: seed 4 differs from seed 3`);
        }
      });

      it('wrappers compose in order over any base rule (IG over guided, input × gradient, SmoothGrad over IG and over input × gradient)', async () => {
        const baseline = Float32Array.from(x0, (_, i) => 0.1 * Math.cos(i));
        const cases: Array<[Base, W[]]> = [
          ['guided', [{ kind: 'ig', steps: 5 }]],
          ['deconv', [{ kind: 'ig', steps: 3, baseline }]],
          ['gradient', [{ kind: 'ixg' }]],
          ['guided', [{ kind: 'ixg' }]],
          ['gradient', [{ kind: 'ixg' }, { kind: 'smoothgrad', samples: 3, noiseLevel: 0.15, seed: 5, form: 'mean' }]],
          ['deconv', [{ kind: 'ig', steps: 3 }, { kind: 'smoothgrad', samples: 3, noiseLevel: 0.15, seed: 6, form: 'variance' }]],
          ['guided', [{ kind: 'smoothgrad', samples: 3, noiseLevel: 0.15, seed: 8, form: 'squared' }, { kind: 'ixg' }]],
        ];
        for (const [base, wrappers] of cases) {
          const what = `${wrappers.map((w) => w.kind).join(' ∘ ')} over ${base}`;
          assertClose(await served(engine, base, wrappers), await reference(engine, base, wrappers, x0), what, 1e-4);
        }
      });

      it('integrated gradients keeps its numbers: the named method is the wrapper over the gradient, bit for bit, and matches its reference', async () => {
        const baseline = Float32Array.from(x0, (_, i) => 0.05 * Math.sin(i));
        for (const b of [undefined, baseline]) {
          const named = await images({
            engine,
            input: input(x0),
            attribution: { method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 6, igBaseline: b && tensorOf(b, SHAPE) },
          });
          const wrapped = await served(engine, 'gradient', [{ kind: 'ig', steps: 6, baseline: b }]);
          assert.deepEqual(named.map((m) => floats(m.image?.tensor)), wrapped);
          assertClose(wrapped, await reference(engine, 'gradient', [{ kind: 'ig', steps: 6, baseline: b }], x0), 'integrated gradients', 1e-4);
        }
      });
    });
  }

  it('every noisy input is one batched engine call per chunk (all its neurons in one backward)', async () => {
    const ort: EngineApi = ts.server.app.engines.onnxruntime;
    const attribute = ort.attribute;
    const rows: number[] = [];
    ort.attribute = async (...args: Parameters<EngineApi['attribute']>) => {
      const target = args[2];
      rows.push(target.kind === 'conv' ? target.channels.length : target.classes.length);
      return attribute.apply(ort, args);
    };
    try {
      await images({
        engine: Engine.ENGINE_ONNXRUNTIME,
        input: input(x0),
        layers: [{ layer: 1 }],
        classes: [1, 7],
        attribution: { wrappers: [wire({ kind: 'smoothgrad', samples: 6, noiseLevel: 0.1, seed: 1, form: 'mean' })] },
      });
    } finally {
      ort.attribute = attribute;
    }
    // Logits chunk: 6 calls of 2 rows; layer 1 (32 channels): 6 calls of 32 rows.
    assert.deepEqual(rows, [...Array(6).fill(2), ...Array(6).fill(32)]);
  });

  it('Similarity takes the same wrappers: its values are cosines of the SmoothGrad images with the class average; another seed is not a cache hit', async () => {
    const average = { split: Split.SPLIT_TEST };
    const attribution = (seed: number) => ({ wrappers: [wire({ kind: 'smoothgrad', samples: 2, noiseLevel: 0.2, seed, form: 'mean' })] });
    const request = (seed: number) => ({ model: 'cnn', dataset: 'mnist', classes: [3], layers: [2], average, engine: Engine.ENGINE_ONNXRUNTIME, attribution: attribution(seed) });
    const layerOf = (msgs: SimilarityResponse[]): LayerSimilarity[] => msgs.flatMap((m) => (m.item?.$case === 'layer' ? [m.item.value] : []));
    const msgs = await collect(ts.client.similarity(request(1)));
    const [layer] = layerOf(msgs);
    const [avg] = await collect(ts.client.classAverages({ model: 'cnn', dataset: 'mnist', classes: [3], average }));
    const avgImage = floats(avg!.image?.tensor);
    const sg = await collect(
      ts.client.neuronImages({
        model: 'cnn',
        engine: Engine.ENGINE_ONNXRUNTIME,
        input: { source: { $case: 'classAverage', value: { dataset: 'mnist', classIndex: 3, average } } },
        layers: [{ layer: 2 }],
        attribution: attribution(1),
      }),
    );
    assert.equal(layer!.values.length, 64);
    sg.forEach((m, k) => {
      const image = floats(m.image?.tensor);
      const want = m.allZero ? 0 : plainCosine(image, avgImage);
      assert.ok(Math.abs(layer!.values[k]! - want) < 1e-4, `channel ${k}: similarity ${layer!.values[k]} vs cosine ${want}`);
    });
    const other = await collect(ts.client.similarity(request(2)));
    assert.ok(other.every((m) => !m.cached), 'another seed is computed, not served from the cache');
    assert.notDeepEqual(layerOf(other)[0]!.values, layer!.values);
    const again = await collect(ts.client.similarity(request(1)));
    assert.ok(again.every((m) => m.cached), 'the same seed is a cache hit');
  });

  it('cli: neurons --input-x-gradient --smoothgrad N --noise --seed --smoothgrad-form send the wrappers, in that order', async () => {
    const cli = async (args: string[]): Promise<{ code: number | null; stderr: string }> => {
      let stderr = '';
      const io: CliIo = { stdout: () => undefined, stderr: (t) => (stderr += t), readStdin: async () => '', stderrIsTty: false };
      return { code: await runCli([`--server=${ts.address}`, 'neurons', 'cnn', ...args], io, {}), stderr };
    };
    const dir = path.join(ts.tmp, 'neurons-smoothgrad');
    const common = ['--sample', '0', '--dataset', 'mnist', '--split', 'test', '--layer', '1:0,3', '--attribution', 'gradient', '--out', dir];
    const r = await cli([...common, '--input-x-gradient', '--smoothgrad', '3', '--noise', '0.2', '--seed', '9', '--smoothgrad-form', 'variance']);
    assert.equal(r.code, 0, r.stderr);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'neurons.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(index.wrappers, [{ inputXGradient: true }, { smoothgrad: { samples: 3, noise: 0.2, seed: 9, form: 'variance' } }]);
    const rpc = await collect(
      ts.client.neuronImages({
        model: 'cnn',
        input: { source: { $case: 'sample', value: { dataset: 'mnist', split: Split.SPLIT_TEST, index: 0 } } },
        layers: [{ layer: 1, channels: [0, 3] }],
        attribution: {
          method: AttributionMethod.ATTRIBUTION_METHOD_GRADIENT,
          wrappers: [wire({ kind: 'ixg' }), wire({ kind: 'smoothgrad', samples: 3, noiseLevel: 0.2, seed: 9, form: 'variance' })],
        },
        png: true,
      }),
    );
    const grid = gridPng(rpc.map((m, i) => decodePixels(m.image!.png, `image ${i}`)), 8);
    assert.ok(fs.readFileSync(path.join(dir, 'layer-1.png')).equals(grid), 'the grid shows the RPC images of the same wrappers');
    const usage = await cli([...common, '--noise', '0.1']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--noise needs --smoothgrad N/);
    const form = await cli([...common, '--smoothgrad', '2', '--smoothgrad-form', 'median']);
    assert.equal(form.code, 2);
    assert.match(form.stderr, /--smoothgrad-form must be one of mean, squared, variance, not 'median'/);
    const bad = await cli([...common, '--smoothgrad', '5000']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /INVALID_ARGUMENT: attribution\.wrappers\[0\]\.smoothgrad\.samples = 5000/);
  });

  it('bad wrapper parameters are INVALID_ARGUMENT naming the field', async () => {
    const sg = (value: Record<string, unknown>): DeepPartial<AttributionWrapper> => ({ wrapper: { $case: 'smoothgrad', value } });
    const ig = (value: Record<string, unknown>): DeepPartial<AttributionWrapper> => ({ wrapper: { $case: 'integratedGradients', value } });
    const cases: Array<[DeepPartial<NeuronImagesRequest['attribution']>, RegExp]> = [
      [{ wrappers: [sg({ samples: 5000 })] }, /attribution\.wrappers\[0\]\.smoothgrad\.samples = 5000 must be an integer in 1\.\.4096/],
      [{ wrappers: [{ wrapper: { $case: 'inputXGradient', value: {} } }, sg({ noiseLevel: -0.5 })] }, /attribution\.wrappers\[1\]\.smoothgrad\.noise_level = -0\.5 must be a number in \(0, 10\]/],
      [{ wrappers: [sg({ noiseLevel: Number.NaN })] }, /attribution\.wrappers\[0\]\.smoothgrad\.noise_level = NaN/],
      [{ wrappers: [sg({ noiseLevel: 11 })] }, /attribution\.wrappers\[0\]\.smoothgrad\.noise_level = 11/],
      [{ wrappers: [sg({ form: 7 })] }, /attribution\.wrappers\[0\]\.smoothgrad\.form: unknown SmoothGrad form 7/],
      [{ wrappers: [ig({ steps: 5000 })] }, /attribution\.wrappers\[0\]\.integrated_gradients\.steps = 5000/],
      [{ wrappers: [sg({}), ig({ baseline: tensorOf(new Float32Array(10), [10]) })] }, /attribution\.wrappers\[1\]\.integrated_gradients\.baseline\.shape \[10\]/],
      [{ wrappers: [{}] }, /attribution\.wrappers\[0\]: set one of integrated_gradients, smoothgrad or input_x_gradient/],
      [{ wrappers: [ig({ steps: 64 }), sg({ samples: 2000 })] }, /attribution\.wrappers: 128000 backward passes per image .*at most 65536/],
      [{ method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 5000 }, /attribution\.ig_steps = 5000 must be an integer in 1\.\.4096/],
      [{ method: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS, igSteps: 100, wrappers: [sg({ samples: 1000 })] }, /attribution\.wrappers: 100000 backward passes/],
      [{ wrappers: Array(9).fill({ wrapper: { $case: 'inputXGradient', value: {} } }) }, /attribution\.wrappers has 9 wrappers \(at most 8\)/],
    ];
    for (const [attribution, re] of cases) {
      const err = await grpcError(() => images({ input: input(x0), attribution }));
      assert.equal(err.code, status.INVALID_ARGUMENT, `${re}: ${err.details}`);
      assert.match(err.details, re);
    }
    // The Similarity RPC takes the same Attribution message, checked the same way.
    const err = await grpcError(() => collect(ts.client.similarity({ model: 'cnn', dataset: 'mnist', attribution: { wrappers: [sg({ samples: 5000 })] } })));
    assert.equal(err.code, status.INVALID_ARGUMENT);
    assert.match(err.details, /attribution\.wrappers\[0\]\.smoothgrad\.samples = 5000/);
  });
});
