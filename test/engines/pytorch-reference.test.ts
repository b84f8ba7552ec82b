/**
 * Guided-backprop and deconvnet neuron images of the shared CIFAR-10 models against an independent
 * PyTorch reference: the committed fixture test/fixtures/reference/neuron-images.{json,bin}, made by
 * scripts/reference/neuron_images.py (its own ONNX→torch interpreter, ReLU backward hooks; torch 1.13),
 * so this test needs no torch. The images come through the path users take: NeuronImages over a real
 * loopback server, on CIFAR-10 test image 0 as a data-set sample (the service's own preprocessing), once
 * per engine. Every conv layer is covered.
 *
 * Tolerance, per image (each judged at its own scale, max|ref|): at least 99.9% of the pixels within
 * 1e-4 · max|ref| of the reference, and cosine ≥ 0.999. Float32 sums in another order can flip a
 * max-pool arg-max between near-equal values, or a ReLU mask at a value near 0, which moves single
 * pixels (issue #11 item 6); these allow for that. Measured here (x86 CPU, onnxruntime and tfjs-wasm):
 * max |diff| ≤ 3e-6 of the peak on every image.
 *
 * The fixture holds the first and the last live channel of every conv layer (max |z| at least 1e-3 of the
 * layer's on this image): VGG11 also has dead channels, weights 1e-38..1e-12 left by weight decay, whose
 * images peak at 1e-37..1e-17, in float32 underflow, where backends legitimately differ (tfjs' wasm
 * backend returns exact zeros for some, PyTorch and onnxruntime tiny values).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AttributionMethod, type NeuronImage } from '../../api/generated/introspect/v1/analysis';
import { ElementType, Engine, Split } from '../../api/generated/introspect/v1/common';
import { needShared, sharedPath } from '../support/shared';
import { REPO_ROOT, collect, startTestServer, type TestServer } from '../support/server';
import { floats, plainCosine } from '../rpc/support';

const FIXTURE_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'reference');

interface FixtureModel {
  name: string;
  file: string;
  sha256: string;
  logits: number[];
  conv_layers: { index: number; node: string; output: string; channels: number }[];
}

interface FixtureImage {
  model: string;
  layer: number;
  channel: number;
  rule: 'guided' | 'deconv';
  shape: number[];
  offset: number;
}

interface Fixture {
  command: string;
  torch: string;
  image: { file: string; split: string; index: number; label: number };
  models: FixtureModel[];
  images: FixtureImage[];
}

const fixture = JSON.parse(fs.readFileSync(path.join(FIXTURE_DIR, 'neuron-images.json'), 'utf8')) as Fixture;
const blob = fs.readFileSync(path.join(FIXTURE_DIR, 'neuron-images.bin'));

function referenceImage(im: FixtureImage): Float32Array {
  const n = im.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = blob.readFloatLE(im.offset + 4 * i);
  return out;
}

/** Pixels within PIXEL_TOL · max|ref| must be at least MIN_INSIDE of an image; cosine at least MIN_COSINE. */
const PIXEL_TOL = 1e-4;
const MIN_INSIDE = 0.999;
const MIN_COSINE = 0.999;

function peak(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

interface Agreement {
  /** max |got − ref| / max |ref| */
  maxRel: number;
  /** fraction of pixels with |got − ref| ≤ PIXEL_TOL · max |ref| */
  inside: number;
  cosine: number;
}

function agreement(got: Float32Array, ref: Float32Array): Agreement {
  assert.equal(got.length, ref.length, 'image sizes differ');
  const scale = peak(ref);
  let maxDiff = 0;
  let within = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    maxDiff = Math.max(maxDiff, d);
    if (d <= PIXEL_TOL * scale) within++;
  }
  return { maxRel: scale === 0 ? maxDiff : maxDiff / scale, inside: within / ref.length, cosine: plainCosine(got, ref) };
}

const ENGINES: Array<[string, Engine]> = [
  ['onnxruntime', Engine.ENGINE_ONNXRUNTIME],
  ['tfjs', Engine.ENGINE_TFJS],
];
const RULES: Array<[FixtureImage['rule'], AttributionMethod]> = [
  ['guided', AttributionMethod.ATTRIBUTION_METHOD_GUIDED_BACKPROP],
  ['deconv', AttributionMethod.ATTRIBUTION_METHOD_DECONVNET],
];

/** CIFAR-10 record `index` of test_batch.bin as raw HWC uint8 pixels. */
function rawPixels(index: number): Uint8Array {
  const rec = 1 + 3072;
  const fd = fs.openSync(sharedPath('datasets', 'cifar-10-batches-bin', 'test_batch.bin'), 'r');
  try {
    const buf = Buffer.alloc(rec);
    fs.readSync(fd, buf, 0, rec, index * rec);
    const hwc = new Uint8Array(3072);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) hwc[p * 3 + c] = buf[1 + c * 1024 + p]!;
    return hwc;
  } finally {
    fs.closeSync(fd);
  }
}

describe(`PyTorch reference (torch ${fixture.torch}): guided backprop and deconvnet on the shared CIFAR-10 models`, function () {
  this.timeout(600_000);
  let ts: TestServer;
  const sharedFiles = [fixture.image.file, ...fixture.models.map((m) => m.file)];

  before(async function () {
    if (!sharedFiles.every((f) => fs.existsSync(sharedPath(f)))) return; // each test is pending with the reason
    ts = await startTestServer({ models: fixture.models.map((m) => sharedPath(m.file)) });
    // The test batch alone is enough for a CIFAR-10 data set (the 30 MB training batch is not copied).
    const dir = path.join(ts.dataRoot, 'cifar');
    await fs.promises.mkdir(dir);
    await fs.promises.copyFile(sharedPath(fixture.image.file), path.join(dir, path.basename(fixture.image.file)));
    await ts.client.registerDataset({ name: 'cifar', path: 'cifar' });
    for (const m of fixture.models) await ts.client.loadModel({ name: m.name, path: path.basename(m.file) });
  });
  after(async () => {
    await ts?.close();
  });

  it('the fixture was made from these model files: same hash, conv layers in the same order, same logits', async function () {
    needShared(this, ...sharedFiles);
    const pixels = rawPixels(fixture.image.index);
    for (const m of fixture.models) {
      const info = await ts.client.getModel(m.name);
      assert.equal(info.sha256, m.sha256, `${m.file} changed since the fixture was made; regenerate it: ${fixture.command}`);
      assert.deepEqual(
        info.convLayers.map((l) => [l.name, l.channels]),
        m.conv_layers.map((l) => [l.node, l.channels]),
        `${m.name}: the service's conv layers (execution order) differ from the reference's`,
      );
      for (const [engineName, engine] of ENGINES) {
        const res = await ts.client.predict({
          model: m.name,
          images: { shape: [32, 32, 3], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(pixels) },
          engine,
        });
        const logits = floats(res.predictions[0]?.logits);
        const peak = Math.max(...m.logits.map(Math.abs));
        m.logits.forEach((want, i) => {
          assert.ok(Math.abs(logits[i]! - want) <= 1e-4 * peak, `${m.name} on ${engineName}: logit ${i} is ${logits[i]}, PyTorch ${want}`);
        });
      }
    }
  });

  for (const model of fixture.models) {
    for (const [engineName, engine] of ENGINES) {
      for (const [rule, method] of RULES) {
        const wanted = fixture.images.filter((im) => im.model === model.name && im.rule === rule);
        it(`${model.name}, ${rule}, ${engineName}: ${wanted.length} images (every conv layer, first and last live channel)`, async function () {
          needShared(this, ...sharedFiles);
          const layers = [...new Set(wanted.map((im) => im.layer))].map((layer) => ({
            layer,
            channels: wanted.filter((im) => im.layer === layer).map((im) => im.channel),
          }));
          const got: NeuronImage[] = await collect(
            ts.client.neuronImages({
              model: model.name,
              input: { source: { $case: 'sample', value: { dataset: 'cifar', split: Split.SPLIT_TEST, index: fixture.image.index } } },
              layers,
              attribution: { method },
              engine,
            }),
          );
          assert.deepEqual(got.map((g) => [g.layer, g.neuron]), wanted.map((im) => [im.layer, im.channel]));
          let worst: Agreement = { maxRel: 0, inside: 1, cosine: 1 };
          const failures: string[] = [];
          wanted.forEach((im, i) => {
            assert.deepEqual(got[i]!.image?.tensor?.shape, im.shape);
            const a = agreement(floats(got[i]!.image?.tensor), referenceImage(im));
            worst = { maxRel: Math.max(worst.maxRel, a.maxRel), inside: Math.min(worst.inside, a.inside), cosine: Math.min(worst.cosine, a.cosine) };
            if (a.inside < MIN_INSIDE || a.cosine < MIN_COSINE) {
              failures.push(`layer ${im.layer} channel ${im.channel}: ${(100 * a.inside).toFixed(2)}% of pixels within ${PIXEL_TOL} of the peak, cosine ${a.cosine.toFixed(6)}, max diff ${a.maxRel.toExponential(2)} of the peak`);
            }
          });
          console.log(
            `      ${model.name} ${rule} ${engineName}, worst image: max |diff| ${worst.maxRel.toExponential(2)} of its peak, ${(100 * worst.inside).toFixed(2)}% of pixels within ${PIXEL_TOL}, cosine ${worst.cosine.toFixed(7)}`,
          );
          assert.deepEqual(failures, [], `${model.name} ${rule} on ${engineName} differs from PyTorch`);
        });
      }
    }
  }
});
