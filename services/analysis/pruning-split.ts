/**
 * Pruning conv layer j changes nothing before it: the model splits at the value conv j reads into a
 * prefix (input → that value) and a suffix (that value → logits). A sweep runs the prefix once per
 * image and only the suffix per configuration. The split exists where that value is a cut of the graph
 * (every later node reads only it and values computed after it: chains like VGG); elsewhere (a skip
 * connection across conv j, or conv j reading the input) there is none and the whole model runs.
 */
import type { EngineModel } from '../engines/engine';
import type { IrGraph, IrNode } from '../graph/ir';
import { keepInputChannels, zeroPreserving } from '../graph/keep-channels';
import { consumers } from '../graph/ir-util';
import { convLayers } from '../graph/layers';

export interface SplitModel {
  /** Input → the value conv `layer` reads; its "logits" are that value, flattened. */
  prefix: EngineModel;
  /** That value → the model's logits. */
  suffix: EngineModel;
  /** Conv `layer`'s index among the suffix's conv layers (the mask's key there). */
  suffixLayer: number;
}

/** Whether `nodes`, run in order, read only `from` and their own outputs, and produce `out`. */
function closedOver(nodes: IrNode[], from: string, out: string): boolean {
  const known = new Set([from]);
  for (const n of nodes) {
    if (!n.inputs.every((v) => known.has(v))) return false;
    known.add(n.output);
  }
  return known.has(out);
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
  if (!closedOver(suffixNodes, cut, g.output)) return undefined;
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

export interface SplitAfter {
  /** Input → `value`, the activation of conv `layer` after the per-channel ops that follow it; its "logits" are `value` flattened. */
  prefix: EngineModel;
  /** `value` → the model's logits. */
  suffix: EngineModel;
  /** The value the models meet at, [channels, H, W]. */
  value: string;
  shape: [number, number, number];
}

/**
 * The model split after conv `layer`: z_j, then the ops that act per channel and keep 0 at 0 (the
 * activation, pooling), up to the first value that is a cut of the graph. Zeroing a channel of z_j
 * zeroes the same channel of that value and nothing else, so a pruned configuration is the suffix run
 * on the prefix's output with those channels zero, or dropped (`keepInputChannels`). Undefined where z_j
 * feeds anything else (a residual add) or no such cut exists.
 */
export function splitAfterConv(model: EngineModel, layer: number): SplitAfter | undefined {
  const g = model.graph;
  const conv = model.convLayers[layer];
  if (!conv) return undefined;
  const uses = consumers(g);
  let value = conv.output;
  let last = g.nodes.findIndex((n) => n.output === value);
  if (last < 0) return undefined;
  for (;;) {
    const next = uses.get(value) ?? [];
    if (next.length !== 1 || !zeroPreserving(next[0]) || value === g.output) break;
    value = next[0].output;
    last = g.nodes.indexOf(next[0]);
  }
  if (value === g.output) return undefined;
  const shape = g.shapes.get(value);
  if (!shape || shape.length !== 3) return undefined;
  const prefixNodes = g.nodes.slice(0, last + 1);
  const suffixNodes = g.nodes.slice(last + 1);
  if (!closedOver(suffixNodes, value, g.output)) return undefined;
  const prefixGraph: IrGraph = { input: g.input, output: value, nodes: prefixNodes, weights: g.weights, shapes: g.shapes };
  const suffixGraph: IrGraph = { input: { name: value, shape: [...shape] }, output: g.output, nodes: suffixNodes, weights: g.weights, shapes: g.shapes };
  return {
    prefix: { id: `${model.id}#upto-${layer}`, graph: prefixGraph, convLayers: convLayers(prefixGraph), classes: shape[0] * shape[1] * shape[2] },
    suffix: { id: `${model.id}#after-${layer}`, graph: suffixGraph, convLayers: convLayers(suffixGraph), classes: model.classes },
    value,
    shape: [shape[0], shape[1], shape[2]],
  };
}

/** The suffix reading only channels `keep` of the split value, or undefined where it cannot drop channels. */
export function suffixKeeping(split: SplitAfter, keep: readonly number[], tag: string): EngineModel | undefined {
  const graph = keepInputChannels(split.suffix.graph, keep, tag);
  if (!graph) return undefined;
  return { id: `${split.suffix.id}#keep-${tag}`, graph, convLayers: convLayers(graph), classes: split.suffix.classes };
}

/**
 * The part of the model from value `from` to value `to` (both [C, H, W]), as a model of its own, where
 * `to` depends on the input only through `from` (e.g. from one split value to a later one in a chain).
 */
export function segmentBetween(model: EngineModel, from: string, to: string): EngineModel | undefined {
  const g = model.graph;
  const start = g.nodes.findIndex((n) => n.output === from);
  const end = g.nodes.findIndex((n) => n.output === to);
  if (start < 0 || end <= start) return undefined;
  const nodes = g.nodes.slice(start + 1, end + 1);
  if (!closedOver(nodes, from, to)) return undefined;
  const fromShape = g.shapes.get(from);
  const toShape = g.shapes.get(to);
  if (!fromShape || !toShape) return undefined;
  const graph: IrGraph = { input: { name: from, shape: [...fromShape] }, output: to, nodes, weights: g.weights, shapes: g.shapes };
  return { id: `${model.id}#from-${from}-to-${to}`, graph, convLayers: convLayers(graph), classes: toShape.reduce((a, b) => a * b, 1) };
}
