import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import type { InferenceSession } from 'onnxruntime-node';
import { importOnnx } from '../../services/graph/onnx-import';
import { exportForward } from '../../services/graph/onnx-export';
import { AttributionRule, AttributionSpec, exportAttribution } from '../../services/graph/backward';
import { ALL_PASSES, NO_PASSES, PASS_NAMES, type PassSet } from '../../services/graph/passes';
import { convLayers } from '../../services/graph/layers';
import { decodeModel, encodeModel } from '../../services/graph/onnx-codec';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import type { IrGraph } from '../../services/graph/ir';
import { IntrospectError } from '../../services/errors';
import { needShared, sharedPath } from '../support/shared';
import { cifarImages, maxAbs, maxAbsDiff, randomArray, rng, run, session } from './support';
import { opModels } from './op-models';
import { Conv, referenceAttribution } from './reference-backprop';

function oneHot(rows: number[], k: number): Float32Array {
  const s = new Float32Array(rows.length * k);
  rows.forEach((c, b) => (s[b * k + c] = 1));
  return s;
}

async function attribute(
  g: IrGraph,
  spec: AttributionSpec,
  rule: AttributionRule,
  x: Float32Array,
  select: Float32Array,
  k: number,
  passes?: PassSet,
): Promise<Float32Array> {
  const s = await session(exportAttribution(g, spec, rule, { passes }));
  return attributeWith(s, g, x, select, k);
}

async function attributeWith(s: InferenceSession, g: IrGraph, x: Float32Array, select: Float32Array, k: number): Promise<Float32Array> {
  const out = await run(s, {
    input: { data: x, dims: [1, ...g.input.shape] },
    select: { data: select, dims: [select.length / k, k] },
  });
  return out.attribution;
}

/**
 * Central differences of `objective` (one value per select row, from one forward run's outputs) at
 * `pixels`, all perturbed images in one batch; compared with the attribution rows.
 *
 * A ReLU network is piecewise linear: a perturbation that crosses a kink (a ReLU or |z| changing sign,
 * a max-pool switching) makes that one difference wrong, so the check asks that nearly all
 * (pixel, row) pairs agree closely and the total relative error is small.
 */
async function checkAgainstFiniteDifferences(
  forward: InferenceSession,
  inputName: string,
  shape: number[],
  x: Float32Array,
  objective: (outputs: Record<string, Float32Array>, image: number) => number[],
  attribution: Float32Array,
  rows: number,
  eps: number,
  pixels: number,
): Promise<void> {
  const size = x.length;
  const r = rng(11);
  const picks = Array.from({ length: pixels }, () => Math.floor(r() * size));
  const batch = new Float32Array(2 * pixels * size);
  picks.forEach((p, i) => {
    batch.set(x, 2 * i * size);
    batch.set(x, (2 * i + 1) * size);
    batch[2 * i * size + p] += eps;
    batch[(2 * i + 1) * size + p] -= eps;
  });
  const out = await run(forward, { [inputName]: { data: batch, dims: [2 * pixels, ...shape] } });
  let num = 0;
  let den = 0;
  let good = 0;
  const scale = Array.from({ length: rows }, (_, b) => Math.max(...picks.map((p) => Math.abs(attribution[b * size + p]))));
  picks.forEach((p, i) => {
    const fp = objective(out, 2 * i);
    const fm = objective(out, 2 * i + 1);
    for (let b = 0; b < rows; b++) {
      const fd = (fp[b] - fm[b]) / (2 * eps);
      const an = attribution[b * size + p];
      num += (fd - an) ** 2;
      den += an ** 2;
      if (Math.abs(fd - an) <= 0.02 * scale[b] + 1e-6) good++;
    }
  });
  const rel = Math.sqrt(num / den);
  const frac = good / (pixels * rows);
  assert.ok(den > 0, 'the attribution should not vanish at every sampled pixel');
  assert.ok(frac >= 0.85, `only ${(100 * frac).toFixed(0)}% of (pixel, row) pairs agree with finite differences (relative error ${rel.toFixed(4)})`);
  assert.ok(rel < 0.1, `relative error ${rel.toFixed(4)} against finite differences`);
}

/** Pass sets to build with: the plain graph, every pass alone, all of them. */
const PASS_CONFIGS: Array<[string, PassSet]> = [
  ['plain', NO_PASSES],
  ...PASS_NAMES.map((n): [string, PassSet] => [n, new Set([n])]),
  ['all passes', ALL_PASSES],
];

/** The original model with z_j as an extra graph output. */
function withOutput(bytes: Uint8Array, value: string): Uint8Array {
  const m = decodeModel(bytes);
  m.graph?.output.push({ name: value, type: undefined });
  return encodeModel(m);
}

function absSums(z: Float32Array, image: number, c: number, hw: number, channels: number[]): number[] {
  return channels.map((k) => {
    let s = 0;
    const base = (image * c + k) * hw;
    for (let p = 0; p < hw; p++) s += Math.abs(z[base + p]);
    return s;
  });
}

describe('graph: attribution graphs', function () {
  this.timeout(120000);

  describe('the gradient rule agrees with central finite differences of the real forward pass', () => {
    it('vgg11_cifar10, conv layer 2, abs_sum objective, three neurons in one batch', async function () {
      needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const bytes = fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx'));
      const g = importOnnx(bytes);
      const layer = convLayers(g)[2];
      const channels = [3, 40, 200];
      const { x } = cifarImages('vgg11_cifar10', 1, 5);
      const a = await attribute(g, { target: 'conv', layer: 2, objective: 'abs_sum' }, 'gradient', x, oneHot(channels, layer.channels), layer.channels);
      const fwd = await session(withOutput(bytes, layer.output));
      const [c, h, w] = layer.shape;
      await checkAgainstFiniteDifferences(fwd, 'input', [3, 32, 32], x, (o, i) => absSums(o[layer.output], i, c, h * w, channels), a, channels.length, 1e-3, 30);
    });

    it('resnet20_cifar10, logit target (residual adds, strided shortcut slices, channel pads, average pool)', async function () {
      needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const bytes = fs.readFileSync(sharedPath('models/resnet20_cifar10.onnx'));
      const g = importOnnx(bytes);
      const { x } = cifarImages('resnet20_cifar10', 1, 7);
      const classes = [0, 3, 8];
      const a = await attribute(g, { target: 'logit' }, 'gradient', x, oneHot(classes, 10), 10);
      const fwd = await session(bytes);
      await checkAgainstFiniteDifferences(fwd, 'input', [3, 32, 32], x, (o, i) => classes.map((k) => o.logits[i * 10 + k]), a, classes.length, 1e-3, 30);
    });

    describe('small models covering every op the importer maps (logit target, random select rows)', () => {
      for (const m of opModels()) {
        for (const [form, passes] of [PASS_CONFIGS[0]!, PASS_CONFIGS[PASS_CONFIGS.length - 1]!]) {
          it(`${m.name} [${form}]`, async () => {
            const g = importOnnx(m.bytes);
            const k = (g.shapes.get(g.output) ?? []).reduce((p, q) => p * q, 1);
            const x = randomArray(m.input[0] * m.input[1] * m.input[2], 21);
            const select = randomArray(2 * k, 22);
            const a = await attribute(g, { target: 'logit' }, 'gradient', x, select, k, passes);
            const fwd = await session(exportForward(g));
            const objective = (o: Record<string, Float32Array>, i: number): number[] =>
              [0, 1].map((b) => {
                let s = 0;
                for (let q = 0; q < k; q++) s += select[b * k + q] * o.logits[i * k + q];
                return s;
              });
            await checkAgainstFiniteDifferences(fwd, 'input', [...m.input], x, objective, a, 2, 1e-3, 40);
          });
        }
      }
    });
  });

  describe('all three rules equal a plain-loop reference (conv -> relu -> max-pool -> conv)', () => {
    const cases = [
      { name: 'non-overlapping pool, strided second conv', size: 8, c1: { k: 3, stride: 1, pad: 1 }, pool: { k: 2, stride: 2, pad: 0 }, c2: { k: 3, stride: 2, pad: 1 } },
      { name: 'overlapping padded pool, strided first conv', size: 7, c1: { k: 3, stride: 2, pad: 1 }, pool: { k: 3, stride: 1, pad: 1 }, c2: { k: 2, stride: 1, pad: 0 } },
      // stride-1 convs around a tiling pool: the packed form keeps the whole backward packed (conv, the pool's
      // routing with the ReLU folded in, conv)
      { name: 'tiling pool, stride-1 convs', size: 8, c1: { k: 3, stride: 1, pad: 1 }, pool: { k: 2, stride: 2, pad: 0 }, c2: { k: 3, stride: 1, pad: 1 } },
    ];
    for (const cs of cases) {
      for (const rule of ['gradient', 'guided', 'deconv'] as const) {
        it(`${cs.name}, ${rule}`, async () => {
          const cin = 2;
          const mk = (cinn: number, cout: number, p: { k: number; stride: number; pad: number }, seed: number): Conv => ({
            w: randomArray(cout * cinn * p.k * p.k, seed, 0.6),
            b: randomArray(cout, seed + 1, 0.2),
            cout,
            cin: cinn,
            ...p,
          });
          const conv1 = mk(cin, 3, cs.c1, 31);
          const conv2 = mk(3, 4, cs.c2, 41);
          const b = new OnnxBuilder();
          const xin = b.input('x', ['N', cin, cs.size, cs.size]);
          const convNode = (v: string, p: Conv) =>
            b.node('Conv', [v, b.floatInit('w', [p.cout, p.cin, p.k, p.k], p.w), b.floatInit('b', [p.cout], p.b)], {
              strides: { ints: [p.stride, p.stride] },
              pads: { ints: [p.pad, p.pad, p.pad, p.pad] },
            });
          const pooled = b.node('MaxPool', [b.node('Relu', [convNode(xin, conv1)])], {
            kernel_shape: { ints: [cs.pool.k, cs.pool.k] },
            strides: { ints: [cs.pool.stride, cs.pool.stride] },
            pads: { ints: [cs.pool.pad, cs.pool.pad, cs.pool.pad, cs.pool.pad] },
          });
          b.node('Flatten', [convNode(pooled, conv2)], {}, 'y');
          b.output('y');
          const g = importOnnx(b.encode());
          const x = randomArray(cin * cs.size * cs.size, 51);
          const rows = [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0.5, -1, 0, 2]];
          const select = Float32Array.from(rows.flat());
          for (const [form, passes] of PASS_CONFIGS) {
            const a = await attribute(g, { target: 'conv', layer: 1, objective: 'abs_sum' }, rule, x, select, 4, passes);
            rows.forEach((sel, r) => {
              const ref = referenceAttribution({ c: cin, h: cs.size, w: cs.size, d: Float64Array.from(x) }, conv1, cs.pool, conv2, sel, rule);
              const got = a.subarray(r * ref.length, (r + 1) * ref.length);
              assert.ok(maxAbs(ref) > 1e-3, 'the reference should not be all zeros');
              assert.ok(maxAbsDiff(got, ref) < 1e-5 * Math.max(1, maxAbs(ref)), `${form} row ${r}: max diff ${maxAbsDiff(got, ref)}`);
            });
          }
        });
      }
    }
  });

  describe('batches', () => {
    it('resnet20, gradient rule: a batch of neurons equals the same neurons one by one', async function () {
      needShared(this, 'models/resnet20_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const g = importOnnx(fs.readFileSync(sharedPath('models/resnet20_cifar10.onnx')));
      const layer = 10;
      const k = convLayers(g)[layer].channels;
      const { x } = cifarImages('resnet20_cifar10', 1, 11);
      const channels = [0, 9, 17, 31];
      const s = await session(exportAttribution(g, { target: 'conv', layer, objective: 'relu_sum' }, 'gradient'));
      const batch = await attributeWith(s, g, x, oneHot(channels, k), k);
      for (let i = 0; i < channels.length; i++) {
        const single = await attributeWith(s, g, x, oneHot([channels[i]], k), k);
        const row = batch.subarray(i * 3072, (i + 1) * 3072);
        assert.ok(maxAbs(single) > 0, `channel ${channels[i]} has an all-zero image`);
        assert.ok(maxAbsDiff(row, single) <= 1e-6 * maxAbs(single), `channel ${channels[i]}`);
      }
    });

    it('vgg11, guided: images are unchanged by adding neurons to the batch (max-pool routing per row)', async function () {
      needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
      const layer = 4;
      const k = convLayers(g)[layer].channels;
      const { x } = cifarImages('vgg11_cifar10', 1, 13);
      const s = await session(exportAttribution(g, { target: 'conv', layer, objective: 'abs_sum' }, 'guided'));
      const small = await attributeWith(s, g, x, oneHot([5, 300], k), k);
      const big = await attributeWith(s, g, x, oneHot([5, 1, 2, 300, 511, 100, 7, 8], k), k);
      assert.ok(maxAbs(small) > 0);
      assert.ok(maxAbsDiff(small.subarray(0, 3072), big.subarray(0, 3072)) <= 1e-6 * maxAbs(small));
      assert.ok(maxAbsDiff(small.subarray(3072), big.subarray(3 * 3072, 4 * 3072)) <= 1e-6 * maxAbs(small));
    });

    it('gradient rule: rows are linear in select, a mixed row equals the mix of one-hot rows (logit target)', async function () {
      needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
      const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
      const { x } = cifarImages('vgg11_cifar10', 1, 17);
      const select = new Float32Array(30);
      select[2] = 1;
      select[10 + 6] = 1;
      select[20 + 2] = 0.25;
      select[20 + 6] = -2;
      const a = await attribute(g, { target: 'logit' }, 'gradient', x, select, 10);
      const mix = a.subarray(0, 3072).map((v, i) => 0.25 * v - 2 * a[3072 + i]);
      assert.ok(maxAbs(a.subarray(0, 3072)) > 0);
      assert.ok(maxAbsDiff(a.subarray(6144), mix) <= 1e-5 * maxAbs(mix));
    });
  });

  it('vgg11 layer 7, guided: the plain graph and the device passes agree (dense matrices on the 2x2 maps, packed convs on the 4x4 maps)', async function () {
    needShared(this, 'models/vgg11_cifar10.onnx', 'datasets/cifar-10-batches-bin/test_batch.bin');
    const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
    const { x } = cifarImages('vgg11_cifar10', 1, 19);
    const sel = oneHot([2, 77, 400], 512);
    const spec: AttributionSpec = { target: 'conv', layer: 7, objective: 'abs_sum' };
    const ref = await attribute(g, spec, 'guided', x, sel, 512, NO_PASSES);
    assert.ok(maxAbs(ref) > 0);
    for (const [form, passes] of [
      ['all passes', ALL_PASSES],
      ['flipped-conv', new Set(['flipped-conv'])],
      // every 4x4 conv of the backward packed, ReLU gates and pool routing in the packed layout
      ['packed-conv + pool-resize', new Set(['packed-conv', 'pool-resize'])],
    ] as Array<[string, PassSet]>) {
      const a = await attribute(g, spec, 'guided', x, sel, 512, passes);
      assert.ok(maxAbsDiff(a, ref) <= 1e-4 * maxAbs(ref), `${form}: max diff ${maxAbsDiff(a, ref)}`);
    }
  });

  describe('every conv layer of the shared CIFAR-10 models yields images', () => {
    for (const model of ['resnet20_cifar10', 'vgg11_cifar10']) {
      it(model, async function () {
        needShared(this, `models/${model}.onnx`, 'datasets/cifar-10-batches-bin/test_batch.bin');
        const g = importOnnx(fs.readFileSync(sharedPath(`models/${model}.onnx`)));
        const { x } = cifarImages(model, 1, 3);
        for (const layer of convLayers(g)) {
          const channels = [0, layer.channels - 1, Math.floor(layer.channels / 2)];
          const a = await attribute(g, { target: 'conv', layer: layer.index, objective: 'abs_sum' }, 'guided', x, oneHot(channels, layer.channels), layer.channels);
          assert.equal(a.length, channels.length * 3072);
          assert.ok(a.every(Number.isFinite), `layer ${layer.index}: non-finite values`);
          assert.ok(maxAbs(a) > 0, `layer ${layer.index}: all three images are zero`);
        }
      });
    }
  });

  it('rejects a conv layer that does not exist and an unknown rule', () => {
    const b = new OnnxBuilder();
    b.node('Conv', [b.input('x', ['N', 1, 4, 4]), b.floatInit('w', [2, 1, 1, 1], randomArray(2, 1))], {}, 'y');
    b.output('y');
    const g = importOnnx(b.encode());
    for (const f of [
      () => exportAttribution(g, { target: 'conv', layer: 1, objective: 'abs_sum' }, 'guided'),
      () => exportAttribution(g, { target: 'conv', layer: 0, objective: 'abs_sum' }, 'smooth' as AttributionRule),
    ]) {
      assert.throws(f, (e: unknown) => e instanceof IntrospectError && e.kind === 'invalid-argument');
    }
  });
});
