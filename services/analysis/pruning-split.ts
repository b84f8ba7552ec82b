/**
 * Pruning conv layer j changes nothing before it: the model splits at the value conv j reads into a
 * prefix (input → that value) and a suffix (that value → logits). A sweep runs the prefix once per
 * image and only the suffix per configuration. The split exists where that value is a cut of the graph
 * (every later node reads only it and values computed after it: chains like VGG); elsewhere (a skip
 * connection across conv j, or conv j reading the input) there is none and the whole model runs.
 */
import type { EngineModel } from '../engines/engine';
import type { IrGraph } from '../graph/ir';
import { convLayers } from '../graph/layers';

export interface SplitModel {
  /** Input → the value conv `layer` reads; its "logits" are that value, flattened. */
  prefix: EngineModel;
  /** That value → the model's logits. */
  suffix: EngineModel;
  /** Conv `layer`'s index among the suffix's conv layers (the mask's key there). */
  suffixLayer: number;
}

export function splitAtConv(model: EngineModel, layer: number): SplitModel | undefined {
  const g = model.graph;
  const conv = model.convLayers[layer];
  if (!conv) return undefined;
  const at = g.nodes.findIndex((n) => n.name === conv.node);
  if (at < 0) return undefined;
  const cut = g.nodes[at].inputs[0];
  if (cut === g.input.name) return undefined;
  const producer = g.nodes.findIndex((n) => n.output === cut);
  if (producer < 0 || producer >= at) return undefined;
  const prefixNodes = g.nodes.slice(0, producer + 1);
  const suffixNodes = g.nodes.slice(producer + 1);
  const known = new Set([cut]);
  for (const n of suffixNodes) {
    if (!n.inputs.every((v) => known.has(v))) return undefined;
    known.add(n.output);
  }
  if (!known.has(g.output)) return undefined;
  const cutShape = g.shapes.get(cut);
  if (!cutShape) return undefined;
  const prefixGraph: IrGraph = { input: g.input, output: cut, nodes: prefixNodes, weights: g.weights, shapes: g.shapes };
  const suffixGraph: IrGraph = { input: { name: cut, shape: [...cutShape] }, output: g.output, nodes: suffixNodes, weights: g.weights, shapes: g.shapes };
  const suffixLayers = convLayers(suffixGraph);
  const suffixLayer = suffixLayers.findIndex((l) => l.node === conv.node);
  if (suffixLayer < 0) return undefined;
  return {
    prefix: { id: `${model.id}#prefix-${layer}`, graph: prefixGraph, convLayers: convLayers(prefixGraph), classes: cutShape.reduce((a, b) => a * b, 1) },
    suffix: { id: `${model.id}#suffix-${layer}`, graph: suffixGraph, convLayers: suffixLayers, classes: model.classes },
    suffixLayer,
  };
}
