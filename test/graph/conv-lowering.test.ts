/**
 * The two ways the ONNX export writes a convolution other than as a plain Conv (a matrix on tiny maps,
 * the batch side by side for large weights on small maps): when each applies, and that the results equal
 * a convolution written as a plain loop here.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { convAsDense } from '../../services/graph/conv-as-dense';
import { convAsTiles } from '../../services/graph/conv-tiles';
import type { ConvOp, IrGraph } from '../../services/graph/ir';
import { importOnnx } from '../../services/graph/onnx-import';
import { exportForward } from '../../services/graph/onnx-export';
import { convLayers } from '../../services/graph/layers';
import { needShared, sharedPath } from '../support/shared';
import { maxAbs, maxAbsDiff, randomArray, run } from './support';

/** y[n, o, y, x] = b[o] + Σ w[o, i, a, c] · x[n, i, y + a − pt, x + c − pl], zero outside: a loop. */
function loopConv(x: Float32Array, n: number, [cin, h, w]: number[], weight: Float32Array, bias: Float32Array, cout: number, k: number, pad: number): Float32Array {
  const out = new Float32Array(n * cout * h * w);
  for (let s = 0; s < n; s++)
    for (let o = 0; o < cout; o++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          let acc = bias[o];
          for (let i = 0; i < cin; i++)
            for (let a = 0; a < k; a++) {
              const iy = yy + a - pad;
              if (iy < 0 || iy >= h) continue;
              for (let c = 0; c < k; c++) {
                const ix = xx + c - pad;
                if (ix < 0 || ix >= w) continue;
                acc += weight[((o * cin + i) * k + a) * k + c] * x[((s * cin + i) * h + iy) * w + ix];
              }
            }
          out[((s * cout + o) * h + yy) * w + xx] = acc;
        }
  return out;
}

function oneConv(cin: number, cout: number, h: number, w: number, k: number, pad: number, seed: number): { g: IrGraph; op: ConvOp } {
  const op: ConvOp = { op: 'conv', weight: 'w', bias: 'b', kernel: [k, k], strides: [1, 1], pads: [pad, pad, pad, pad], dilations: [1, 1], group: 1 };
  const g: IrGraph = {
    input: { name: 'x', shape: [cin, h, w] },
    output: 'y',
    nodes: [{ name: 'conv', inputs: ['x'], output: 'y', op }],
    weights: new Map([
      ['w', { shape: [cout, cin, k, k], data: randomArray(cout * cin * k * k, seed, 0.05) }],
      ['b', { shape: [cout], data: randomArray(cout, seed + 1) }],
    ]),
    shapes: new Map([
      ['x', [cin, h, w]],
      ['y', [cout, h, w]],
    ]),
  };
  return { g, op };
}

describe('graph: conv lowerings in the ONNX export', function () {
  this.timeout(120000);

  it('vgg11_cifar10: the 2×2 layers become a matrix, the 512→512 layer on 4×4 runs side by side, the rest stay Conv', function () {
    needShared(this, 'models/vgg11_cifar10.onnx');
    const g = importOnnx(fs.readFileSync(sharedPath('models/vgg11_cifar10.onnx')));
    const dense: number[] = [];
    const tiles: number[] = [];
    for (const l of convLayers(g)) {
      const n = g.nodes.find((x) => x.name === l.node)!;
      if (n.op.op !== 'conv') continue;
      const inShape = g.shapes.get(n.inputs[0])!;
      // The matrix is tried first.
      if (convAsDense(n.op, inShape, l.shape)) dense.push(l.index);
      else if (convAsTiles(n.op, inShape, g.weights.get(n.op.weight)!.data.length)) tiles.push(l.index);
    }
    assert.deepEqual(dense, [6, 7]);
    assert.deepEqual(tiles, [5]);
  });

  for (const c of [
    { what: 'side by side (3×3, 512→512 on 4×3)', cin: 512, cout: 512, h: 4, w: 3, k: 3, pad: 1, dense: false, tiles: true },
    { what: 'side by side with a 2-column gap (5×5, 300→300 on 4×4; its matrix would be too large)', cin: 300, cout: 300, h: 4, w: 4, k: 5, pad: 2, dense: false, tiles: true },
    { what: 'as a matrix (3×3, 64→48 on 2×2)', cin: 64, cout: 48, h: 2, w: 2, k: 3, pad: 1, dense: true, tiles: false },
    { what: 'plain Conv (3×3, 16→8 on 5×5)', cin: 16, cout: 8, h: 5, w: 5, k: 3, pad: 1, dense: false, tiles: false },
  ]) {
    it(`${c.what} equals a conv written as a loop`, async () => {
      const { g, op } = oneConv(c.cin, c.cout, c.h, c.w, c.k, c.pad, 7);
      assert.equal(convAsDense(op, g.input.shape, [c.cout, c.h, c.w]), c.dense);
      assert.equal(convAsTiles(op, g.input.shape, g.weights.get('w')!.data.length), c.tiles);
      const n = 3;
      const x = randomArray(n * c.cin * c.h * c.w, 11);
      const got = (await run(exportForward(g), { input: { data: x, dims: [n, c.cin, c.h, c.w] } })).logits;
      const want = loopConv(x, n, [c.cin, c.h, c.w], g.weights.get('w')!.data, g.weights.get('b')!.data, c.cout, c.k, c.pad);
      assert.equal(got.length, want.length);
      assert.ok(maxAbsDiff(got, want) <= 1e-5 * Math.max(1, maxAbs(want)), `max diff ${maxAbsDiff(got, want)}`);
    });
  }
});
