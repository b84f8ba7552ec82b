/**
 * Every device pass (services/graph/passes): on a small model where it applies (checked on the graph's op
 * types), the attribution images with the pass equal those of the plain graph, under each ReLU rule, on both
 * executors: onnxruntime running the ONNX encoding and the tfjs interpreter (wasm, else cpu).
 */
import { strict as assert } from 'node:assert';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../services/engines/tfjs/backend';
import { TensorProgram } from '../../services/engines/tfjs/interpret';
import { buildAttribution, type AttributionRule, type AttributionSpec } from '../../services/graph/backward';
import { importOnnx } from '../../services/graph/onnx-import';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { encodeOnnx } from '../../services/graph/onnx-encode';
import { exportForward } from '../../services/graph/onnx-export';
import { ALL_PASSES, NO_PASSES, PASS_NAMES, passSet, type PassName, type PassSet } from '../../services/graph/passes';
import type { IrGraph } from '../../services/graph/ir';
import { convLayers } from '../../services/graph/layers';
import { opCounts, type TensorGraph } from '../../services/graph/tensor-graph';
import { IntrospectError } from '../../services/errors';
import { maxAbs, maxAbsDiff, randomArray, run } from './support';

interface Layer {
  conv?: { cout: number; k: number; pad: number };
  relu?: boolean;
  pool?: number;
  /** Overlapping or padded max pools: stride and padding (default: tiling, stride = window, no padding). */
  poolStride?: number;
  poolPad?: number;
}

/** x [c, h, w] -> the layers -> flatten -> dense(classes): an ONNX model imported to the IR. */
function model(c: number, h: number, w: number, layers: Layer[], classes = 3, seed = 1): IrGraph {
  const b = new OnnxBuilder('m');
  let v = b.input('x', ['N', c, h, w]);
  let [cc, hh, ww] = [c, h, w];
  for (const l of layers) {
    if (l.conv) {
      const { cout, k, pad } = l.conv;
      const scale = Math.sqrt(2 / (cc * k * k));
      v = b.node('Conv', [v, b.floatInit('w', [cout, cc, k, k], randomArray(cout * cc * k * k, seed++, scale)), b.floatInit('b', [cout], randomArray(cout, seed++, 0.1))], {
        pads: { ints: [pad, pad, pad, pad] },
      });
      cc = cout;
      hh = hh + 2 * pad - k + 1;
      ww = ww + 2 * pad - k + 1;
    }
    if (l.relu) v = b.node('Relu', [v]);
    if (l.pool) {
      const [k, s, p] = [l.pool, l.poolStride ?? l.pool, l.poolPad ?? 0];
      v = b.node('MaxPool', [v], { kernel_shape: { ints: [k, k] }, strides: { ints: [s, s] }, pads: { ints: [p, p, p, p] } });
      hh = Math.floor((hh + 2 * p - k) / s) + 1;
      ww = Math.floor((ww + 2 * p - k) / s) + 1;
    }
  }
  const flat = b.node('Flatten', [v]);
  const f = cc * hh * ww;
  b.node('Gemm', [flat, b.floatInit('wd', [classes, f], randomArray(classes * f, seed++, 0.3))], { transB: { i: 1 } }, 'y');
  b.output('y');
  return importOnnx(b.encode());
}

interface Case {
  pass: PassName;
  /** Passes on besides the one under test (a form that needs another to be reached). */
  with?: PassName[];
  g: () => IrGraph;
  spec: AttributionSpec;
  /** Whether the pass changed the graph the way it should (op counts with vs without). */
  applied: (on: Map<string, number>, off: Map<string, number>, graph: TensorGraph) => boolean;
}

const n = (m: Map<string, number>, op: string): number => m.get(op) ?? 0;

const CASES: Case[] = [
  {
    pass: 'seed-through-conv',
    g: () => model(3, 8, 8, [{ conv: { cout: 8, k: 3, pad: 1 }, relu: true }, { conv: { cout: 6, k: 3, pad: 1 }, relu: true }]),
    spec: { target: 'conv', layer: 1, objective: 'abs_sum' },
    applied: (on, off) => n(on, 'MatMul') === n(off, 'MatMul') + 2 && n(on, 'ConvTranspose') === n(off, 'ConvTranspose') - 1,
  },
  {
    pass: 'flipped-conv',
    g: () => model(8, 6, 6, [{ conv: { cout: 8, k: 3, pad: 1 }, relu: true }, { conv: { cout: 8, k: 3, pad: 1 }, relu: true }]),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'ConvTranspose') === n(off, 'ConvTranspose') - 2 && n(on, 'Conv') === n(off, 'Conv') + 2,
  },
  {
    pass: 'packed-conv',
    g: () => model(8, 4, 4, [{ conv: { cout: 8, k: 3, pad: 1 }, relu: true }, { conv: { cout: 8, k: 3, pad: 1 }, relu: true, pool: 2 }]),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'ConvTranspose') === n(off, 'ConvTranspose') - 2 && n(on, 'Transpose') > n(off, 'Transpose'),
  },
  {
    pass: 'packed-conv',
    with: ['pool-resize', 'pool-indices'],
    g: () => model(8, 4, 4, [{ conv: { cout: 8, k: 3, pad: 1 }, relu: true, pool: 2 }, { conv: { cout: 8, k: 3, pad: 1 }, relu: true }]),
    spec: { target: 'logit' },
    // the pool's routing in the packed layout: a grouped ConvTranspose upsamples instead of a Resize
    applied: (on, off) => n(on, 'Resize') === 0 && n(off, 'Resize') === 1 && n(on, 'ConvTranspose') === 1,
  },
  {
    pass: 'conv-as-dense',
    g: () => model(4, 2, 2, [{ conv: { cout: 6, k: 3, pad: 1 }, relu: true }, { conv: { cout: 5, k: 3, pad: 1 }, relu: true }]),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'Conv') === 0 && n(off, 'Conv') === 2 && n(on, 'ConvTranspose') === 0 && n(on, 'Gemm') === n(off, 'Gemm') + 2,
  },
  {
    pass: 'pool-indices',
    // an overlapping, padded pool (3×3, stride 2, pad 1) and a tiling one; plain: routed through the window taps
    g: () => model(2, 8, 8, [{ conv: { cout: 4, k: 3, pad: 1 }, relu: true, pool: 3, poolStride: 2, poolPad: 1 }, { conv: { cout: 4, k: 3, pad: 1 }, relu: true, pool: 2 }]),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'ScatterElements') === 2 && n(off, 'ScatterElements') === 0 && n(on, 'Equal') === 0 && n(off, 'Equal') === 9 + 4,
  },
  {
    pass: 'pool-resize',
    with: ['pool-indices'],
    g: () => model(2, 8, 8, [{ conv: { cout: 4, k: 3, pad: 1 }, relu: true, pool: 2 }, { conv: { cout: 4, k: 3, pad: 1 }, relu: true, pool: 2 }]),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'Resize') === 2 && n(off, 'Resize') === 0 && n(on, 'ScatterElements') === 2 && n(off, 'ScatterElements') === 2,
  },
  {
    pass: 'pool-conv-fused',
    g: () => model(3, 8, 8, [{ conv: { cout: 4, k: 3, pad: 1 }, relu: true, pool: 2 }, { conv: { cout: 4, k: 3, pad: 1 }, relu: true }]),
    spec: { target: 'logit' },
    // the first layer's ReLU and conv backward fold into one ConvTranspose (none is left for that conv)
    applied: (on, off, graph) =>
      n(on, 'ConvTranspose') === n(off, 'ConvTranspose') &&
      graph.nodes.some((x) => x.opType === 'ConvTranspose' && JSON.stringify(x.attrs.kernel_shape) === JSON.stringify({ ints: [4, 4] })),
  },
  {
    pass: 'conv-tiles',
    g: () => model(512, 4, 4, [{ conv: { cout: 512, k: 3, pad: 1 }, relu: true }], 2),
    spec: { target: 'logit' },
    applied: (on, off) => n(on, 'Transpose') === n(off, 'Transpose') + 2 && n(on, 'Conv') === n(off, 'Conv'),
  },
];

const RULES: AttributionRule[] = ['gradient', 'guided', 'deconv'];

function selectRows(g: IrGraph, spec: AttributionSpec): { data: Float32Array; k: number } {
  const k = spec.target === 'conv' ? convLayers(g)[spec.layer]!.channels : (g.shapes.get(g.output) ?? [0])[0]!;
  return { data: randomArray(2 * k, 77), k };
}

async function byOrt(graph: TensorGraph, x: Float32Array, inShape: number[], sel: { data: Float32Array; k: number }): Promise<Float32Array> {
  const out = await run(encodeOnnx(graph), { input: { data: x, dims: [1, ...inShape] }, select: { data: sel.data, dims: [2, sel.k] } });
  return out.attribution;
}

async function byTfjs(graph: TensorGraph, x: Float32Array, inShape: number[], sel: { data: Float32Array; k: number }): Promise<Float32Array> {
  const p = new TensorProgram(graph);
  const input = tf.tensor(x, [1, ...inShape]);
  const select = tf.tensor2d(sel.data, [2, sel.k]);
  try {
    const t = p.run({ input, select }).get('attribution')!;
    const d = (await t.data()) as Float32Array;
    t.dispose();
    return d;
  } finally {
    p.dispose();
    input.dispose();
    select.dispose();
  }
}

describe('graph: device passes (pass on equals pass off, onnxruntime and tfjs)', function () {
  this.timeout(300000);

  before(async () => {
    try {
      await selectBackend({ backend: 'wasm' }, () => undefined);
    } catch {
      await selectBackend({ backend: 'cpu' }, () => undefined);
    }
  });

  it('every registered pass has a case here', () => {
    for (const p of PASS_NAMES) assert.ok(CASES.some((c) => c.pass === p), p);
  });

  for (const c of CASES) {
    const label = c.with ? `${c.pass} (with ${c.with.join(', ')})` : c.pass;
    it(label, async () => {
      const g = c.g();
      const on = new Set<PassName>([c.pass, ...(c.with ?? [])]);
      const off: PassSet = new Set(c.with ?? []);
      const x = randomArray(g.input.shape.reduce((a, b) => a * b, 1), 5);
      const sel = selectRows(g, c.spec);
      for (const rule of RULES) {
        const gOn = buildAttribution(g, c.spec, rule, { passes: on });
        const gOff = buildAttribution(g, c.spec, rule, { passes: off });
        assert.ok(c.applied(opCounts(gOn), opCounts(gOff), gOn), `${rule}: the pass did not apply (on ${JSON.stringify([...opCounts(gOn)])}, off ${JSON.stringify([...opCounts(gOff)])})`);
        const ref = await byOrt(gOff, x, g.input.shape, sel);
        assert.ok(maxAbs(ref) > 1e-4, `${rule}: the plain graph's images are all zero`);
        const tol = 1e-5 * Math.max(1, maxAbs(ref));
        for (const [name, got] of [
          ['onnxruntime', await byOrt(gOn, x, g.input.shape, sel)],
          ['tfjs', await byTfjs(gOn, x, g.input.shape, sel)],
          ['tfjs, plain graph', await byTfjs(gOff, x, g.input.shape, sel)],
        ] as Array<[string, Float32Array]>) {
          assert.ok(maxAbsDiff(got, ref) <= tol, `${rule}, ${name}: max diff ${maxAbsDiff(got, ref)} (scale ${maxAbs(ref)})`);
        }
      }
    });
  }

  it('the forward export with conv-tiles equals the plain forward', async () => {
    const g = model(512, 4, 4, [{ conv: { cout: 512, k: 3, pad: 1 }, relu: true }], 2);
    const x = randomArray(2 * 512 * 16, 9);
    const a = await run(exportForward(g, { passes: ALL_PASSES }), { input: { data: x, dims: [2, 512, 4, 4] } });
    const b = await run(exportForward(g, { passes: NO_PASSES }), { input: { data: x, dims: [2, 512, 4, 4] } });
    assert.ok(maxAbsDiff(a.logits, b.logits) <= 1e-5 * Math.max(1, maxAbs(b.logits)));
  });

  it('an unknown pass name is invalid-argument, naming the known ones', () => {
    assert.throws(
      () => passSet(['packed-conv', 'warp-drive']),
      (e: unknown) => e instanceof IntrospectError && e.kind === 'invalid-argument' && /warp-drive/.test(e.message) && /packed-conv/.test(e.message),
    );
  });
});
