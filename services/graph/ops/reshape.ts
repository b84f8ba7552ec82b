/**
 * Per-sample reshape to a resolved shape. Reads the ONNX ops that only re-view the data (Reshape,
 * Squeeze, Unsqueeze, no-op Transpose) and Keras Reshape; `reshapeTo` picks alias, flatten or reshape.
 */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument, unimplemented } from '../../errors';
import { fromNchwTensor, toNchw } from '../../engines/tfjs/layout';
import { BATCH, KNOWN, knownValues, resolveReshape } from '../onnx-const-eval';
import type { OnnxReadContext, TfjsContext } from './op';
import { defineOp } from './op';
import { shapeSize } from './shape-util';

/** `x` re-shaped to the per-sample `target`: itself, a flatten or a reshape node. */
export function reshapeTo(cx: OnnxReadContext, x: string, target: number[]): string {
  const shape = cx.shapeOf(x);
  if (shapeSize(target) !== shapeSize(shape)) return cx.fail(`cannot reshape [${shape}] to [${target}] per sample`);
  if (target.length === shape.length && target.every((d, i) => d === shape[i])) return x;
  if (target.length === 1) return cx.emit({ op: 'flatten' }, [x]);
  return cx.emit({ op: 'reshape', shape: target }, [x]);
}

/** tfjs form of flatten and reshape: through NCHW order. */
export function reshapeTfjs(_op: unknown, [x]: tf.Tensor[], cx: TfjsContext): tf.Tensor {
  const out = cx.outShape();
  return fromNchwTensor(tf.reshape(toNchw(x!, cx.inShape()), [x!.shape[0]!, ...out]), out);
}

function readReshape(cx: OnnxReadContext): void {
  const x = cx.dataIn(0);
  const shape = cx.shapeOf(x);
  const t = cx.constIn(1, 'the target shape');
  if (!t) return cx.fail('needs a target shape');
  const vals = Array.from(t.data);
  const sym = t.sym ?? new Uint8Array(vals.length);
  const allowZero = cx.attrs.int('allowzero', 0) === 1;
  if (sym.slice(1).some((s) => s !== KNOWN)) return cx.fail(`target shape depends on the batch size beyond dimension 0`);
  const rest = vals.slice(1);
  const first = vals[0];
  let perSample: number[];
  if (sym[0] === BATCH || (first === 0 && !allowZero)) {
    perSample = resolveReshape(shape, rest.map((d, i) => (d === 0 && !allowZero ? (shape[i] ?? 0) : d)), true);
  } else if (sym[0] !== KNOWN) {
    cx.fail('target shape computes dimension 0 from the batch size');
  } else if (first === -1 && rest.every((d) => d > 0 || (d === 0 && !allowZero))) {
    perSample = rest.map((d, i) => (d === 0 ? shape[i]! : d));
  } else if (first === 1) {
    perSample = resolveReshape(shape, rest.map((d, i) => (d === 0 && !allowZero ? (shape[i] ?? 0) : d)), true);
  } else {
    cx.fail(`target shape [${vals}] changes the batch dimension`);
  }
  cx.bindOut(reshapeTo(cx, x, perSample));
}

function readSqueeze(cx: OnnxReadContext): void {
  const x = cx.dataIn(0);
  const shape = cx.shapeOf(x);
  const a = cx.constIn(1, 'axes');
  const axes = a ? knownValues(a, 'axes') : (cx.attrs.ints('axes') ?? []);
  const full = [-1, ...shape];
  let out: number[];
  if (cx.opType === 'Squeeze') {
    const r = full.length;
    const drop = new Set(axes.length ? axes.map((v) => (v < 0 ? v + r : v)) : full.flatMap((d, i) => (d === 1 ? [i] : [])));
    if (drop.has(0)) return cx.fail('squeezes the batch dimension');
    out = full.filter((_, i) => !drop.has(i));
  } else {
    const outRank = full.length + axes.length;
    const ins = new Set(axes.map((v) => (v < 0 ? v + outRank : v)));
    if (ins.has(0)) return cx.fail('inserts a dimension before the batch dimension');
    out = [];
    let k = 0;
    for (let i = 0; i < outRank; i++) out.push(ins.has(i) ? 1 : full[k++]!);
  }
  cx.bindOut(reshapeTo(cx, x, out.slice(1)));
}

function readTranspose(cx: OnnxReadContext): void {
  const x = cx.dataIn(0);
  const r = cx.shapeOf(x).length + 1;
  const perm = cx.attrs.ints('perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
  const shape = [1, ...cx.shapeOf(x)];
  const moved = perm.filter((p, i) => p !== i && shape[p] !== 1);
  if (perm[0] !== 0 || moved.length > 0) return cx.fail(`perm [${perm}] moves data (only no-op transposes are supported)`);
  cx.bindOut(reshapeTo(cx, x, perm.slice(1).map((p) => shape[p]!)));
}

export const reshape = defineOp({
  op: 'reshape',
  summary: 'per-sample reshape to a resolved shape (NCHW element order)',
  shape: (op, [x], cx) => {
    if (shapeSize(op.shape) !== shapeSize(x!)) throw invalidArgument(`${cx.what}: cannot reshape [${x}] to [${op.shape}]`);
    return [...op.shape];
  },
  emitOnnx: (op, cx, _n, [x], o) => cx.b.node('Reshape', [x!, cx.b.ints('shape', [0, ...op.shape])], {}, o),
  tfjs: reshapeTfjs,
  backward: (_op, cx) => cx.give(0, cx.b.node('Reshape', [cx.gy, cx.b.ints('shape', [-1, ...cx.inShape()])])),
  onnx: { Reshape: readReshape, Squeeze: readSqueeze, Unsqueeze: readSqueeze, Transpose: readTranspose },
  kerasLayers: {
    Reshape: (cx) => {
      const x = cx.one();
      const target = cx.config.target_shape;
      if (!Array.isArray(target)) throw invalidArgument(`layer ${cx.name} (Reshape) has no target_shape`);
      const size = shapeSize(x.shape);
      const t = target.map(Number);
      const known = t.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const resolved = t.map((d) => (d === -1 ? size / known : d));
      if (shapeSize(resolved) !== size || resolved.some((d) => !Number.isInteger(d) || d <= 0)) {
        throw invalidArgument(`layer ${cx.name} (Reshape): cannot reshape ${size} elements to ${JSON.stringify(target)}`);
      }
      if (resolved.length === 1) return cx.flatten(cx.name, x);
      const spatial = (s: number[]): number => (s.length === 3 ? s[0]! * s[1]! : 1); // Keras [H, W, C]
      const kerasIn = x.shape.length === 3 ? [x.shape[1]!, x.shape[2]!, x.shape[0]!] : x.shape;
      // Layouts agree when neither side has more than one spatial position ([1, 1, C] ↔ [C]).
      if (!x.perm && spatial(kerasIn) === 1 && resolved.length === 3 && spatial(resolved) === 1) {
        const shape = [resolved[2]!, 1, 1];
        const name = cx.addNode(cx.name, { op: 'reshape', shape }, [x.name], shape);
        return { name, shape, perm: null };
      }
      throw unimplemented(
        `layer ${cx.name} (Reshape) from ${JSON.stringify(kerasIn)} to ${JSON.stringify(resolved)} changes the NHWC element order; not supported`,
      );
    },
  },
});
