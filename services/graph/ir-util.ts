/** Small queries on IR graphs shared by the importers, exporters and layer listings. */
import type { IrGraph, IrNode } from './ir';

/** Consumers of every value, in execution order (a node reading a value twice appears twice). */
export function consumers(g: IrGraph): Map<string, IrNode[]> {
  const m = new Map<string, IrNode[]>();
  for (const n of g.nodes) for (const v of n.inputs) m.set(v, [...(m.get(v) ?? []), n]);
  return m;
}

/** Weight names an op refers to (from its op module). */
export { weightRefs } from './ops';

/** The nodes `target` depends on, in execution order. */
export function ancestors(g: IrGraph, target: string): IrNode[] {
  const live = new Set<string>([target]);
  const out: IrNode[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!live.has(n.output)) continue;
    out.push(n);
    for (const v of n.inputs) live.add(v);
  }
  return out.reverse();
}
