/**
 * The tfjs tensor-graph interpreter against onnxruntime running the same graph as ONNX: single ops at the
 * edges of their semantics (max-pool indices with ties, transposed convs with strides / groups / output
 * padding, scatter with duplicate indices, negative pads and slice steps), and whole attribution graphs of
 * the small op models for every conv backward form. Run on each tfjs backend present here (wasm, cpu).
 */
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { IntrospectError } from '../../services/errors';
import { activate, selectBackend, type TfjsBackendName } from '../../services/engines/tfjs/backend';
import { TensorProgram } from '../../services/engines/tfjs/interpret';
import { buildAttribution } from '../../services/graph/backward';
import { importOnnx } from '../../services/graph/onnx-import';
import { OnnxBuilder } from '../../services/graph/onnx-builder';
import { encodeOnnx } from '../../services/graph/onnx-encode';
import { ALL_PASSES, NO_PASSES } from '../../services/graph/passes';
import type { TensorGraph } from '../../services/graph/tensor-graph';
import { maxAbs, maxAbsDiff, randomArray, session } from '../graph/support';
import { opModels } from '../graph/op-models';

type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

/** Every output of the graph, by onnxruntime and by the interpreter, as numbers. */
async function both(g: TensorGraph, feeds: Feeds): Promise<Array<{ name: string; ort: number[]; tfjs: number[] }>> {
  const s = await session(encodeOnnx(g));
  const f: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', v.data, v.dims);
  const r = await s.run(f);
  await s.release();
  const program = new TensorProgram(g);
  const inputs: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = tf.tensor(v.data, v.dims);
  try {
    const outs = program.run(inputs);
    const res = [];
    for (const o of g.outputs) {
      const t = outs.get(o.name)!;
      const ref = r[o.name]!;
      assert.deepEqual(t.shape, ref.dims.map(Number), `${o.name}: shape`);
      res.push({ name: o.name, ort: Array.from(ref.data as ArrayLike<number | bigint>, Number), tfjs: Array.from(await t.data(), Number) });
      t.dispose();
    }
    return res;
  } finally {
    program.dispose();
    Object.values(inputs).forEach((t) => t.dispose());
  }
}

function close(res: Array<{ name: string; ort: number[]; tfjs: number[] }>, tol = 1e-5): void {
  for (const r of res) {
    const d = maxAbsDiff(r.ort, r.tfjs);
    assert.ok(d <= tol * Math.max(1, maxAbs(r.ort)), `${r.name}: max diff ${d}`);
  }
}

/** Values on a coarse grid, so that pooling windows hold ties. */
function coarse(n: number, seed: number): Float32Array {
  return Float32Array.from(randomArray(n, seed), (v) => Math.round(v * 2) / 2);
}

const BACKENDS: TfjsBackendName[] = ['wasm', 'cpu', 'webgpu'];

for (const backend of BACKENDS) {
  describe(`tfjs interpreter on ${backend} equals onnxruntime`, function () {
    this.timeout(120000);

    before(async function () {
      try {
        await selectBackend({ backend }, () => undefined);
      } catch (e) {
        // webgpu needs a Vulkan device (scripts/setup.sh installs Mesa's lavapipe where there is no GPU)
        if (this.test?.parent) this.test.parent.title += ` [pending: ${e instanceof Error ? e.message : String(e)}]`;
        this.skip();
      }
    });
    beforeEach(async () => activate(backend));

    describe('MaxPool with indices (flat NCHW, first maximum on ties)', () => {
      const cases = [
        { name: '2x2 stride 2', k: 2, s: 2, p: 0, ceil: 0, size: 8 },
        { name: '3x3 stride 1 pad 1 (overlapping)', k: 3, s: 1, p: 1, ceil: 0, size: 7 },
        { name: '3x3 stride 2 pad 1 ceil mode', k: 3, s: 2, p: 1, ceil: 1, size: 8 },
        { name: '2x2 stride 2 ceil mode, odd size', k: 2, s: 2, p: 0, ceil: 1, size: 7 },
      ];
      for (const c of cases) {
        it(c.name, async () => {
          const b = new OnnxBuilder('pool');
          const x = b.input('x', [2, 3, c.size, c.size]);
          const [y, i] = b.nodeN('MaxPool', [x], ['y', 'i'], {
            kernel_shape: { ints: [c.k, c.k] },
            strides: { ints: [c.s, c.s] },
            pads: { ints: [c.p, c.p, c.p, c.p] },
            ceil_mode: { i: c.ceil },
          });
          b.output(y);
          b.output(i, undefined, 7);
          const res = await both(b.graph(16), { x: { data: coarse(2 * 3 * c.size * c.size, 3), dims: [2, 3, c.size, c.size] } });
          for (const r of res) assert.deepEqual(r.tfjs, r.ort, r.name);
        });
      }
    });

    describe('single ops', () => {
      const x4 = (b: OnnxBuilder, dims: number[]): string => b.input('x', dims);
      const cases: Array<{ name: string; dims: number[]; body: (b: OnnxBuilder, x: string) => string }> = [
        {
          name: 'ConvTranspose: stride 2, asymmetric pads, output_padding',
          dims: [2, 4, 5, 6],
          body: (b, x) =>
            b.node('ConvTranspose', [x, b.floatInit('w', [4, 3, 3, 2], randomArray(72, 5)), b.floatInit('bias', [3], randomArray(3, 6))], {
              strides: { ints: [2, 2] },
              pads: { ints: [1, 0, 2, 1] },
              output_padding: { ints: [1, 0] },
            }),
        },
        {
          name: 'ConvTranspose: groups and dilations',
          dims: [2, 4, 5, 5],
          body: (b, x) =>
            b.node('ConvTranspose', [x, b.floatInit('w', [4, 3, 2, 3], randomArray(72, 7))], {
              group: { i: 2 },
              dilations: { ints: [2, 1] },
              pads: { ints: [0, 1, 1, 1] },
            }),
        },
        {
          name: 'ConvTranspose: depthwise ones kernel, stride 3 (pooling backward)',
          dims: [1, 3, 4, 4],
          body: (b, x) =>
            b.node('ConvTranspose', [x, b.floatInit('w', [3, 1, 3, 3], new Float32Array(27).fill(1))], {
              group: { i: 3 },
              strides: { ints: [3, 3] },
            }),
        },
        {
          name: 'Conv: strides and dilations above 1 together, groups',
          dims: [2, 4, 9, 10],
          body: (b, x) =>
            b.node('Conv', [x, b.floatInit('w', [6, 2, 3, 2], randomArray(72, 8))], {
              group: { i: 2 },
              strides: { ints: [2, 1] },
              pads: { ints: [1, 0, 2, 1] },
              dilations: { ints: [2, 1] },
            }),
        },
        {
          name: 'AveragePool: padded, ceil mode, count_include_pad 0 and 1',
          dims: [2, 3, 7, 7],
          body: (b, x) => {
            const attrs = { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] }, ceil_mode: { i: 1 } };
            const a = b.node('AveragePool', [x], attrs);
            const c = b.node('AveragePool', [x], { ...attrs, count_include_pad: { i: 1 } });
            return b.node('Concat', [a, c], { axis: { i: 1 } });
          },
        },
        {
          name: 'ScatterElements with reduction add (duplicate indices) and without',
          dims: [2, 12],
          body: (b, x) => {
            const idx = b.ints('idx', [0, 3, 3, 11, 5, 5, 0, 1], [2, 4]);
            const upd = b.node('Slice', [x, b.ints('s', [0]), b.ints('e', [4]), b.ints('a', [1])]);
            const added = b.node('ScatterElements', [x, idx, upd], { axis: { i: 1 }, reduction: { s: 'add' } });
            const idx2 = b.ints('idx', [0, 3, 11, 5, 2, 1, 7, 4], [2, 4]);
            const set = b.node('ScatterElements', [x, idx2, upd], { axis: { i: 1 } });
            return b.node('Concat', [added, set], { axis: { i: 1 } });
          },
        },
        {
          name: 'Resize nearest asymmetric floor by (1, 1, 2, 3)',
          dims: [2, 3, 4, 5],
          body: (b, x) =>
            b.node('Resize', [x, '', b.floats('scales', [1, 1, 2, 3])], {
              mode: { s: 'nearest' },
              coordinate_transformation_mode: { s: 'asymmetric' },
              nearest_mode: { s: 'floor' },
            }),
        },
        {
          name: 'Resize nearest asymmetric floor by (1, 1, 1.5, 0.6) (not whole numbers)',
          dims: [2, 3, 4, 5],
          body: (b, x) =>
            b.node('Resize', [x, '', b.floats('scales', [1, 1, 1.5, 0.6])], {
              mode: { s: 'nearest' },
              coordinate_transformation_mode: { s: 'asymmetric' },
              nearest_mode: { s: 'floor' },
            }),
        },
        {
          name: 'Slice with negative steps and clamped ends; negative and positive Pad',
          dims: [2, 3, 6, 7],
          body: (b, x) => {
            const s = b.node('Slice', [x, b.ints('s', [-1, 5]), b.ints('e', [Number.MIN_SAFE_INTEGER, 100]), b.ints('a', [2, 3]), b.ints('st', [-2, 1])]);
            return b.node('Pad', [s, b.ints('pads', [0, 1, -1, 2, 0, 0, 2, -1]), b.floats('v', [0.5], [])]);
          },
        },
        {
          name: 'Split, Expand, Shape, ConstantOfShape, Unsqueeze, ReduceSum, Gemm',
          dims: [2, 6],
          body: (b, x) => {
            const [p, q] = b.nodeN('Split', [x, b.ints('split', [2, 4])], 2, { axis: { i: 1 } });
            const gm = b.node('Gemm', [q, b.floatInit('w', [3, 4], randomArray(12, 9)), b.floatInit('c', [3], randomArray(3, 10))], {
              transB: { i: 1 },
              alpha: { f: 0.5 },
              beta: { f: 2 },
            });
            const ones = b.node('ConstantOfShape', [b.node('Shape', [gm])]);
            const e = b.node('Expand', [b.node('Unsqueeze', [p, b.ints('ax', [1])]), b.ints('shape', [2, 3, 2])]);
            const r = b.node('ReduceSum', [e, b.ints('ax', [2])], { keepdims: { i: 0 } });
            return b.node('Concat', [b.node('Add', [gm, ones]), r], { axis: { i: 1 } });
          },
        },
      ];
      for (const c of cases) {
        it(c.name, async () => {
          const b = new OnnxBuilder('op');
          const y = c.body(b, x4(b, c.dims));
          b.node('Identity', [y], {}, 'y');
          b.output('y');
          const n = c.dims.reduce((p, q) => p * q, 1);
          close(await both(b.graph(16), { x: { data: randomArray(n, 4), dims: c.dims } }));
        });
      }
    });

    describe('attribution graphs of the op models, plain and with every device pass (logit target, two select rows)', () => {
      for (const m of opModels()) {
        for (const [form, passes] of [['plain', NO_PASSES], ['all passes', ALL_PASSES]] as const) {
          it(`${m.name} [${form}]`, async () => {
            const g = importOnnx(m.bytes);
            const k = (g.shapes.get(g.output) ?? []).reduce((p, q) => p * q, 1);
            const graph = buildAttribution(g, { target: 'logit' }, 'guided', { passes });
            const x = randomArray(m.input[0] * m.input[1] * m.input[2], 21);
            close(
              await both(graph, {
                input: { data: x, dims: [1, ...m.input] },
                select: { data: randomArray(2 * k, 22), dims: [2, k] },
              }),
              1e-4,
            );
          });
        }
      }
    });

    it('an op type it does not know is refused when the program is made, naming it', () => {
      const b = new OnnxBuilder('odd');
      b.node('Hardmax', [b.input('x', [1, 4])], {}, 'y');
      b.output('y');
      assert.throws(
        () => new TensorProgram(b.graph(16)),
        (e: unknown) => e instanceof IntrospectError && e.kind === 'unimplemented' && /Hardmax/.test(e.message),
      );
    });
  });
}
