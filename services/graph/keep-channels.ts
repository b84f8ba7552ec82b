/**
 * Physical channel removal: the graph rewritten to read only some channels of its input. Where every
 * path from the input to a weighted op (a conv of group 1, or a dense layer after a flatten) goes
 * through ops that act per channel and keep 0 at 0 (ReLU, leaky ReLU, clip around 0, tanh, max and
 * average pooling, global pooling, zero padding of the spatial axes, identity), a channel whose input is
 * all zeros contributes nothing, and dropping it together with the weights that read it leaves the
 * output unchanged while those ops do proportionally less work. A pruning sweep uses it to run the part
 * of the model after a pruned layer without the pruned channels.
 */
import type { IrGraph, IrNode, Shape, WeightTensor } from './ir';
import { zeroPreservingOp } from './ops';

/** How a value downstream of the input carries the kept channels. */
type Reduced = { kind: 'channels' } | { kind: 'flat'; block: number };

/** Whether `n` acts per channel and maps an all-zero channel to an all-zero channel (its op module's trait). */
export function zeroPreserving(n: IrNode): boolean {
  return zeroPreservingOp(n.op);
}

/**
 * `g` reading only input channels `keep` (ascending, distinct): the input becomes [K, H, W] and the
 * weights that read those channels are cut to match. Undefined where the channels reach an op that
 * cannot simply drop them (an add, a concat, an affine, a grouped conv, the output itself, ...).
 */
export function keepInputChannels(g: IrGraph, keep: readonly number[], tag: string): IrGraph | undefined {
  const inShape = g.input.shape;
  if (inShape.length !== 3) return undefined;
  const channels = inShape[0];
  for (let i = 0; i < keep.length; i++) {
    if (!Number.isInteger(keep[i]) || keep[i] < 0 || keep[i] >= channels || (i > 0 && keep[i] <= keep[i - 1])) return undefined;
  }
  const k = keep.length;
  if (k === 0) return undefined;
  const reduced = new Map<string, Reduced>([[g.input.name, { kind: 'channels' }]]);
  const shapes = new Map(g.shapes);
  const weights = new Map(g.weights);
  const nodes: IrNode[] = [];
  const withChannels = (v: string): void => {
    const s = g.shapes.get(v);
    if (s) shapes.set(v, [k, ...s.slice(1)]);
  };
  withChannels(g.input.name);
  for (const n of g.nodes) {
    const hits = n.inputs.filter((v) => reduced.has(v));
    if (hits.length === 0) {
      nodes.push(n);
      continue;
    }
    if (n.inputs.length !== 1) return undefined;
    const r = reduced.get(n.inputs[0])!;
    const op = n.op;
    if (r.kind === 'channels' && zeroPreserving(n)) {
      reduced.set(n.output, r);
      withChannels(n.output);
      nodes.push(n);
    } else if (r.kind === 'channels' && op.op === 'flatten') {
      const s = g.shapes.get(n.inputs[0]) as Shape;
      const block = s.slice(1).reduce((a, b) => a * b, 1);
      reduced.set(n.output, { kind: 'flat', block });
      shapes.set(n.output, [k * block]);
      nodes.push(n);
    } else if (r.kind === 'channels' && op.op === 'conv' && op.group === 1) {
      const w = g.weights.get(op.weight);
      if (!w) return undefined;
      const name = `${op.weight}#keep:${tag}`;
      weights.set(name, keepColumns(w, keep, w.shape.slice(2).reduce((a, b) => a * b, 1)));
      nodes.push({ ...n, op: { ...op, weight: name } });
    } else if (r.kind === 'flat' && op.op === 'dense') {
      const w = g.weights.get(op.weight);
      if (!w) return undefined;
      const name = `${op.weight}#keep:${tag}`;
      weights.set(name, keepColumns(w, keep, r.block));
      nodes.push({ ...n, op: { ...op, weight: name } });
    } else {
      return undefined;
    }
  }
  if (reduced.has(g.output)) return undefined;
  return { input: { name: g.input.name, shape: [k, ...inShape.slice(1)] }, output: g.output, nodes, weights, shapes };
}

/**
 * A weight whose rows read input channels in blocks of `block` consecutive entries (conv: [O, C, kh,
 * kw], block kh·kw; dense after a flatten: [out, C·block]), keeping only channels `keep`.
 */
function keepColumns(w: WeightTensor, keep: readonly number[], block: number): WeightTensor {
  const rows = w.shape[0];
  const inWidth = w.data.length / rows;
  const outWidth = keep.length * block;
  const data = new Float32Array(rows * outWidth);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < keep.length; j++) {
      const from = r * inWidth + keep[j] * block;
      data.set(w.data.subarray(from, from + block), r * outWidth + j * block);
    }
  }
  const shape = w.shape.length === 2 ? [rows, outWidth] : [rows, keep.length, ...w.shape.slice(2)];
  return { shape, data };
}
