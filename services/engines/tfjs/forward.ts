/**
 * Runs the IR forward with tfjs ops, in layout (services/engines/tfjs/layout.ts). Values are freed as soon as
 * their last consumer has run, except those the caller asks to keep.
 */
import * as tf from '@tensorflow/tfjs-core';
import { unimplemented } from '../../errors';
import type { IrNode } from '../../graph/ir';
import { opDef } from '../../graph/ops';
import type { PreparedModel } from './prepared';

export {
  avgPoolDivisor,
  broadcastable,
  padMap,
  poolGeometry,
  sliceBounds,
  tensorPaddings,
  type PoolGeometry,
} from './tensor-ops';

export interface ForwardOptions {
  /** Values to return (the caller disposes them). */
  keep: ReadonlySet<string>;
  /** [C] vectors multiplied onto these values (conv outputs z_j) right after they are computed. */
  masks?: ReadonlyMap<string, tf.Tensor>;
  /** Stop after the node producing this value. */
  until?: string;
}

export function runForward(pm: PreparedModel, x: tf.Tensor, opts: ForwardOptions): Map<string, tf.Tensor> {
  const g = pm.graph;
  const last = opts.until === undefined ? g.nodes.length - 1 : g.nodes.findIndex((n) => n.output === opts.until);
  if (last < 0) throw unimplemented(`value ${opts.until} is not produced by any node`);
  const uses = new Map<string, number>();
  for (let i = 0; i <= last; i++) for (const v of g.nodes[i]!.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
  const values = new Map<string, tf.Tensor>([[g.input.name, x]]);
  const out = new Map<string, tf.Tensor>();
  if (opts.keep.has(g.input.name)) out.set(g.input.name, tf.clone(x));
  const release = (v: string): void => {
    const left = (uses.get(v) ?? 0) - 1;
    uses.set(v, left);
    if (left <= 0 && v !== g.input.name) {
      values.get(v)?.dispose();
      values.delete(v);
    }
  };
  try {
    for (let i = 0; i <= last; i++) {
      const node = g.nodes[i]!;
      const ins = node.inputs.map((v) => values.get(v)!);
      const mask = opts.masks?.get(node.output);
      const y = tf.tidy(() => {
        const r = evalNode(pm, node, ins);
        return mask ? tf.mul(r, mask) : r;
      });
      if (opts.keep.has(node.output)) out.set(node.output, y);
      if ((uses.get(node.output) ?? 0) > 0) values.set(node.output, opts.keep.has(node.output) ? tf.clone(y) : y);
      else if (!opts.keep.has(node.output)) y.dispose();
      node.inputs.forEach(release);
    }
  } catch (e) {
    for (const t of out.values()) t.dispose();
    throw e;
  } finally {
    for (const [v, t] of values) if (v !== g.input.name) t.dispose();
  }
  return out;
}

/** One node's tfjs form, from its op module (services/graph/ops). */
function evalNode(pm: PreparedModel, node: IrNode, ins: tf.Tensor[]): tf.Tensor {
  const def = opDef(node.op.op, `node ${node.name}`, 'the tfjs engine');
  return def.tfjs(node.op as never, ins, {
    pm,
    node,
    inShape: (i = 0) => pm.shape(node.inputs[i]!),
    outShape: () => pm.shape(node.output),
  });
}
