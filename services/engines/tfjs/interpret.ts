/**
 * Runs a tensor graph (services/graph/tensor-graph.ts) with tfjs ops: the tfjs engine's executor for the
 * graphs the graph builders produce (the same attribution graph onnxruntime runs as ONNX). Op semantics
 * are ONNX's (./onnx-ops.ts). A program converts the graph's initializers to tensors once (and the
 * weight layouts its ops derive from them, e.g. NHWC conv filters), and frees every intermediate value after
 * its last reader. An op type the interpreter does not know fails when the program is made, naming it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument, unimplemented } from '../../errors';
import { initializerBytes, type TensorGraph } from '../../graph/tensor-graph';
import { OPS, type OpContext } from './onnx-ops';

export class TensorProgram {
  private readonly consts = new Map<string, tf.Tensor>();
  /** Exact host values of the int64 initializers (shapes, axes, pads). */
  private readonly hostInts = new Map<string, number[]>();
  private readonly derivedCache = new Map<string, tf.Tensor>();
  /** Index of the last node reading each value. */
  private readonly lastUse = new Map<string, number>();
  private readonly outputs: Set<string>;
  private disposed = false;
  /** Bytes of the graph's initializers (what the program holds, derived layouts aside). */
  readonly bytes: number;

  constructor(readonly graph: TensorGraph) {
    for (const n of graph.nodes) {
      if (!OPS[n.opType]) throw unimplemented(`the tfjs engine cannot run op type ${n.opType} (node ${n.name} of graph ${graph.name})`);
    }
    graph.nodes.forEach((n, i) => n.inputs.forEach((v) => v && this.lastUse.set(v, i)));
    this.outputs = new Set(graph.outputs.map((o) => o.name));
    this.bytes = initializerBytes(graph);
    try {
      for (const t of graph.initializers) {
        if (t.type === 'float') this.consts.set(t.name, tf.tensor(t.data, t.dims, 'float32'));
        else {
          this.hostInts.set(t.name, t.data);
          const clamped = t.data.map((v) => Math.min(Math.max(v, -2147483648), 2147483647));
          this.consts.set(t.name, tf.tensor(clamped, t.dims, 'int32'));
        }
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * Runs the graph on `feeds` (one tensor per graph input, NCHW as the graph declares them); returns the graph
   * outputs (the caller disposes them). The feeds stay the caller's.
   */
  run(feeds: Record<string, tf.Tensor>): Map<string, tf.Tensor> {
    if (this.disposed) throw new Error(`program ${this.graph.name} is disposed`);
    for (const i of this.graph.inputs) {
      if (!feeds[i.name]) throw invalidArgument(`graph ${this.graph.name}: input ${i.name} is not fed`);
    }
    const values = new Map<string, tf.Tensor>();
    const lookup = (v: string): tf.Tensor | undefined => {
      if (v === '') return undefined;
      const t = values.get(v) ?? this.consts.get(v) ?? feeds[v];
      if (!t) throw new Error(`graph ${this.graph.name}: value ${v} is read before it is computed`);
      return t;
    };
    const out = new Map<string, tf.Tensor>();
    try {
      this.graph.nodes.forEach((n, i) => {
        const ins = n.inputs.map(lookup);
        const ctx: OpContext = {
          ints: (k) => {
            const name = n.inputs[k] ?? '';
            const host = this.hostInts.get(name);
            if (host) return host;
            const t = ins[k];
            if (!t) throw new Error(`${n.opType} ${n.name}: input ${k} is missing`);
            return Array.from(t.dataSync());
          },
          scalar: (k) => {
            const t = ins[k];
            if (!t) throw new Error(`${n.opType} ${n.name}: input ${k} is missing`);
            return t.dataSync()[0]!;
          },
          derived: (k, kind, make) => {
            const name = n.inputs[k] ?? '';
            const t = ins[k];
            if (!t) throw new Error(`${n.opType} ${n.name}: input ${k} is missing`);
            if (!this.consts.has(name)) return make(t);
            const key = `${name}|${kind}`;
            let hit = this.derivedCache.get(key);
            if (!hit) {
              hit = tf.keep(tf.tidy(() => make(t)));
              this.derivedCache.set(key, hit);
            }
            return hit;
          },
        };
        const results = tf.tidy(() => OPS[n.opType]!(n, ins, ctx));
        n.outputs.forEach((o, k) => {
          const t = results[k];
          if (!o) {
            t?.dispose();
            return;
          }
          if (!t) throw new Error(`${n.opType} ${n.name}: output ${k} was not produced`);
          values.set(o, t);
        });
        for (const t of results.slice(n.outputs.length)) t.dispose();
        for (const v of new Set(n.inputs)) {
          if (this.lastUse.get(v) === i && values.has(v) && !this.outputs.has(v)) {
            values.get(v)!.dispose();
            values.delete(v);
          }
        }
      });
      for (const o of this.outputs) {
        const t = values.get(o);
        if (!t) throw new Error(`graph ${this.graph.name}: output ${o} was not computed`);
        out.set(o, t);
        values.delete(o);
      }
      return out;
    } catch (e) {
      for (const t of out.values()) t.dispose();
      throw e;
    } finally {
      for (const t of values.values()) t.dispose();
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const t of this.consts.values()) t.dispose();
    for (const t of this.derivedCache.values()) t.dispose();
    this.consts.clear();
    this.derivedCache.clear();
  }
}
