/** What the method sees in a graph: its conv layers (neurons), dense layers, size and op vocabulary. */
import type { ConvLayer, DenseLayer, IrGraph, IrNode } from './ir';
import { consumers, weightRefs } from './ir-util';
import { isActivation } from './ops';

/** The activation node applied to value `v` (its first consumer that is an activation), if any. */
function activationOf(v: string, uses: Map<string, IrNode[]>): IrNode | undefined {
  return (uses.get(v) ?? []).find((n) => isActivation(n.op));
}

/** Conv layers in execution order, numbered from 0. */
export function convLayers(g: IrGraph): ConvLayer[] {
  const uses = consumers(g);
  const out: ConvLayer[] = [];
  for (const n of g.nodes) {
    if (n.op.op !== 'conv') continue;
    const shape = g.shapes.get(n.output) ?? [];
    out.push({
      index: out.length,
      node: n.name,
      output: n.output,
      channels: shape[0] ?? 0,
      shape: [...shape],
      batchNormFolded: n.op.batchNormFolded === true,
      activation: activationOf(n.output, uses)?.op.op ?? '',
    });
  }
  return out;
}

/**
 * The value holding conv layer `layer`'s activation: the output of the activation applied to z_j, or
 * z_j itself when none is (e.g. a residual conv whose output goes into an add).
 */
export function activationValue(g: IrGraph, layer: ConvLayer): string {
  return activationOf(layer.output, consumers(g))?.output ?? layer.output;
}

/** Dense (fully connected) layers in execution order, numbered from 0. */
export function denseLayers(g: IrGraph): DenseLayer[] {
  const out: DenseLayer[] = [];
  for (const n of g.nodes) {
    if (n.op.op !== 'dense') continue;
    out.push({ index: out.length, node: n.name, output: n.output, units: (g.shapes.get(n.output) ?? [0])[0] });
  }
  return out;
}

/** Learned parameters: conv and dense weights and biases, affine scales and shifts (constants excluded). */
export function parameterCount(g: IrGraph): number {
  const seen = new Set<string>();
  let count = 0;
  for (const n of g.nodes) {
    if (n.op.op === 'constant') continue;
    for (const w of weightRefs(n.op)) {
      if (seen.has(w)) continue;
      seen.add(w);
      count += g.weights.get(w)?.data.length ?? 0;
    }
  }
  return count;
}

/** The distinct IR op names of the graph, in order of first appearance. */
export function opNames(g: IrGraph): string[] {
  return [...new Set(g.nodes.map((n) => n.op.op))];
}
