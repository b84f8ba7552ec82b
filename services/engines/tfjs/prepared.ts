/**
 * A model's weights as tfjs tensors in the layouts the tfjs ops want, converted once per model (lazily per
 * node) and disposed together in `dispose()`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument, unimplemented } from '../../errors';
import type { ConvOp, IrGraph, IrNode, WeightTensor } from '../../graph/ir';
import type { EngineModel } from '../engine';
import { fromNchw, isMap } from './layout';

export type ConvKind = 'standard' | 'depthwise' | 'grouped';

export interface ConvInfo {
  kind: ConvKind;
  cin: number;
  cout: number;
  /** Channel multiplier of a depthwise conv (cout / cin). */
  multiplier: number;
}

export class PreparedModel {
  private readonly tensors = new Map<string, tf.Tensor | tf.Tensor[]>();
  readonly graph: IrGraph;

  constructor(readonly model: EngineModel) {
    this.graph = model.graph;
  }

  shape(value: string): number[] {
    const s = this.graph.shapes.get(value);
    if (!s) throw invalidArgument(`the graph has no shape for value ${value}`);
    return s;
  }

  weight(name: string): WeightTensor {
    const w = this.graph.weights.get(name);
    if (!w) throw invalidArgument(`the graph has no weight ${name}`);
    return w;
  }

  convInfo(node: IrNode): ConvInfo {
    const op = node.op as ConvOp;
    const cin = this.shape(node.inputs[0]!)[0]!;
    const cout = this.weight(op.weight).shape[0]!;
    if (op.strides.some((s) => s > 1) && op.dilations.some((d) => d > 1)) {
      throw unimplemented(`conv ${node.name}: strides and dilations both above 1 are not supported by the tfjs engine`);
    }
    if (op.group === 1) return { kind: 'standard', cin, cout, multiplier: 1 };
    if (op.group === cin && cout % cin === 0) return { kind: 'depthwise', cin, cout, multiplier: cout / cin };
    return { kind: 'grouped', cin, cout, multiplier: 1 };
  }

  /**
   * Forward filters: standard [kH, kW, Cin, Cout]; depthwise [kH, kW, Cin, multiplier]; grouped one standard
   * filter per group.
   */
  convFilters(node: IrNode): tf.Tensor4D[] {
    return this.cached(`${node.name}#filter`, () => {
      const op = node.op as ConvOp;
      const info = this.convInfo(node);
      const w = this.irWeight(op.weight); // [Cout, Cin/g, kH, kW]
      if (info.kind === 'standard') return [tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D];
      if (info.kind === 'depthwise') {
        const [, , kh, kw] = w.shape as number[];
        return [tf.transpose(tf.reshape(w, [info.cin, info.multiplier, kh!, kw!]), [2, 3, 0, 1]) as tf.Tensor4D];
      }
      return tf.split(w, op.group, 0).map((part) => tf.transpose(part, [2, 3, 1, 0]) as tf.Tensor4D);
    });
  }

  bias(node: IrNode, name: string | undefined): tf.Tensor | undefined {
    if (!name) return undefined;
    return this.cached(`${node.name}#bias`, () => [tf.tensor1d(this.weight(name).data)])[0];
  }

  /** Dense weight transposed to [in, out]. */
  denseWeight(node: IrNode, name: string): tf.Tensor2D {
    return this.cached(`${node.name}#dense`, () => [tf.transpose(this.irWeight(name)) as tf.Tensor2D])[0]!;
  }

  /** A per-channel (IR axis 0) vector shaped to broadcast against values of per-sample shape `s`. */
  channelVector(node: IrNode, name: string, s: number[]): tf.Tensor {
    return this.cached(`${node.name}#${name}`, () => {
      const data = this.weight(name).data;
      if (data.length !== s[0]) throw invalidArgument(`node ${node.name}: ${name} has ${data.length} values, expected ${s[0]}`);
      // [C] broadcasts on the last axis, which is the channel axis of maps and vectors; [C, 1, ...] otherwise.
      const shape = isMap(s) || s.length === 1 ? [data.length] : [data.length, ...s.slice(1).map(() => 1)];
      return [tf.tensor(data, shape)];
    })[0]!;
  }

  /** A constant value as a batch-1 tensor in layout. */
  constant(node: IrNode, name: string): tf.Tensor {
    return this.cached(`${node.name}#const`, () => {
      const w = this.weight(name);
      return [fromNchw(w.data, 1, w.shape)];
    })[0]!;
  }

  /** A cached tensor built by `make` (run in a tidy; its results are kept). */
  cachedTensor(key: string, make: () => tf.Tensor): tf.Tensor {
    return this.cached(key, () => [make()])[0]!;
  }

  dispose(): void {
    for (const t of this.tensors.values()) {
      if (Array.isArray(t)) t.forEach((x) => x.dispose());
      else t.dispose();
    }
    this.tensors.clear();
  }

  private irWeight(name: string): tf.Tensor {
    const w = this.weight(name);
    return tf.tensor(w.data, w.shape);
  }

  private cached<T extends tf.Tensor>(key: string, make: () => T[]): T[] {
    const hit = this.tensors.get(key);
    if (hit) return hit as T[];
    // Kept: this may run inside a caller's tidy, which must not dispose the cache.
    const made = tf.tidy(() => make()).map((t) => tf.keep(t));
    this.tensors.set(key, made);
    return made;
  }
}
