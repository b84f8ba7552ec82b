/**
 * The ONNX graphs the onnxruntime engine runs, built from the IR on demand (services/graph exporters) and
 * named by a key: model id + graph kind. Bytes are kept while workers may still ask for them, bounded in size.
 */
import type { IrGraph } from '../../graph/ir';
import { exportForward } from '../../graph/onnx-export';
import { exportAttribution, type AttributionSpec, type LayerPoint } from '../../graph/backward';
import { passKey, type PassSet } from '../../graph/passes';
import type { ReluRule } from '../engine';

export type GraphSpec =
  | { kind: 'forward'; maskLayers: number[]; activationStats: number[]; passes: PassSet }
  | { kind: 'attribution'; target: AttributionSpec; rule: ReluRule; passes: PassSet; wrt?: LayerPoint; key: string };

/** The cache key: attribution specs carry theirs (services/engines/attribution-graph.ts). */
export function graphKey(modelId: string, spec: GraphSpec): string {
  if (spec.kind === 'forward') {
    return `${modelId}|forward|acts=${spec.activationStats.join(',')}|masks=${spec.maskLayers.join(',')}|${passKey(spec.passes)}`;
  }
  return spec.key;
}

export function buildGraph(g: IrGraph, spec: GraphSpec): Uint8Array {
  if (spec.kind === 'forward') {
    return exportForward(g, { activationStats: spec.activationStats, maskLayers: spec.maskLayers, passes: spec.passes });
  }
  return exportAttribution(g, spec.target, spec.rule, { passes: spec.passes, wrt: spec.wrt });
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
