/**
 * The ONNX graphs the onnxruntime engine runs, built from the IR on demand (services/graph exporters) and
 * named by a key: model id + graph kind. Bytes are kept while workers may still ask for them, bounded in size.
 */
import type { IrGraph } from '../../graph/ir';
import { exportForward } from '../../graph/onnx-export';
import { exportAttribution } from '../../graph/backward';
import type { NeuronObjective, ReluRule } from '../engine';

export type GraphSpec =
  | { kind: 'forward'; maskLayers: number[]; activationStats: number[] }
  | { kind: 'attribution'; target: { target: 'conv'; layer: number; objective: NeuronObjective } | { target: 'logit' }; rule: ReluRule };

export function graphKey(modelId: string, spec: GraphSpec): string {
  if (spec.kind === 'forward') {
    return `${modelId}|forward|acts=${spec.activationStats.join(',')}|masks=${spec.maskLayers.join(',')}`;
  }
  const t = spec.target;
  const target = t.target === 'conv' ? `conv:${t.layer}:${t.objective}` : 'logit';
  return `${modelId}|attribution|${target}|${spec.rule}`;
}

export function buildGraph(g: IrGraph, spec: GraphSpec): Uint8Array {
  if (spec.kind === 'forward') {
    return exportForward(g, { activationStats: spec.activationStats, maskLayers: spec.maskLayers });
  }
  return exportAttribution(g, spec.target, spec.rule);
}

export class GraphCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string, build: () => Uint8Array): Uint8Array {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const bytes = build();
    this.entries.set(key, bytes);
    this.bytes += bytes.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes || k === key) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
    return bytes;
  }

  drop(predicate: (key: string) => boolean): void {
    for (const [k, v] of [...this.entries]) {
      if (!predicate(k)) continue;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
    }
  }
}
