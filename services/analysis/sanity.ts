/**
 * Sanity check (SPEC §4; Adebayo et al. 2018, cascading randomisation): re-initialise the model's
 * layers from the top — dense layers first, then conv layers, each time from the output down — and
 * recompute the similarity curves at every depth, beside the trained model's.
 *
 * Re-initialisation is deterministic: He-normal weights (std √(2 / fan_in)) and zero biases, drawn from
 * a generator seeded by (seed, node name), so a layer gets the same weights at every depth of the
 * cascade. It is applied to a copy of the IR under a new model id; the trained model is untouched.
 *
 * A conv layer's neuron images depend only on the nodes upstream of it, so under method 1 a layer
 * none of whose ancestors was re-initialised keeps its trained values and is not recomputed. Method 2
 * compares with the class logit's image, which depends on every layer, so it recomputes all.
 */
import { createHash } from 'node:crypto';
import type { EngineModel } from '../engines/engine';
import { invalidArgument, throwIfAborted } from '../errors';
import type { IrGraph, WeightTensor } from '../graph/ir';
import { buildCurves, type LayerStats, type SimilarityCurves } from '../../api/curves';
import { collectSimilarity, type SimilarityOptions } from './similarity';

export interface SanityCheckOptions extends SimilarityOptions {
  seed: number;
  /** Deepest cascade step: re-initialise the top 1, 2, …, maxDepth layers. 0 or absent = all. */
  maxDepth?: number;
}

export interface SanityDepth {
  kind: 'depth';
  /** Number of re-initialised layers (0 = the trained model). */
  depth: number;
  /** Node names re-initialised, from the output down. */
  reinitialised: string[];
  curves: SimilarityCurves;
  /** Per layer: meanOverClasses minus the trained model's. */
  difference: Float32Array;
  /** Layers recomputed at this depth (the others kept their trained values). */
  recomputed: number[];
  done: number;
  total: number;
}

/** Node names in cascade order: dense layers from the output down, then conv layers from the output down. */
export function cascadeOrder(graph: IrGraph): string[] {
  const dense = graph.nodes.filter((n) => n.op.op === 'dense').map((n) => n.name);
  const conv = graph.nodes.filter((n) => n.op.op === 'conv').map((n) => n.name);
  return [...dense.reverse(), ...conv.reverse()];
}

/** xoshiro128** seeded from sha256(seed, name): uniform numbers in [0, 1). */
export function seededUniform(seed: number, name: string): () => number {
  const h = createHash('sha256').update(`${seed}\u0000${name}`).digest();
  const s = new Uint32Array([h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12)]);
  if (s[0] === 0 && s[1] === 0 && s[2] === 0 && s[3] === 0) s[0] = 1;
  return () => {
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 4294967296;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** He-normal (Box–Muller) weights of the given shape; fan_in = product of all but the first dimension. */
export function heNormal(shape: number[], uniform: () => number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const std = Math.sqrt(2 / Math.max(1, fanIn));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** A copy of the model with the named conv / dense nodes re-initialised (weights He-normal, bias 0). */
export function reinitialise(model: EngineModel, nodes: string[], seed: number, id: string): EngineModel {
  const graph = model.graph;
  const weights = new Map<string, WeightTensor>(graph.weights);
  for (const name of nodes) {
    const node = graph.nodes.find((n) => n.name === name);
    if (!node || (node.op.op !== 'conv' && node.op.op !== 'dense')) throw invalidArgument(`node '${name}' is not a conv or dense layer of the model`);
    const w = graph.weights.get(node.op.weight);
    if (!w) throw invalidArgument(`node '${name}' refers to a missing weight '${node.op.weight}'`);
    weights.set(node.op.weight, { shape: [...w.shape], data: heNormal(w.shape, seededUniform(seed, name)) });
    if (node.op.bias !== undefined) {
      const b = graph.weights.get(node.op.bias);
      if (!b) throw invalidArgument(`node '${name}' refers to a missing bias '${node.op.bias}'`);
      weights.set(node.op.bias, { shape: [...b.shape], data: new Float32Array(b.data.length) });
    }
  }
  return { ...model, id, graph: { ...graph, weights } };
}

/** Names of the nodes each value depends on (its producer and everything upstream). */
export function upstreamNodes(graph: IrGraph, value: string): Set<string> {
  const producer = new Map(graph.nodes.map((n) => [n.output, n]));
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const node = producer.get(v);
    if (!node || seen.has(node.name)) continue;
    seen.add(node.name);
    stack.push(...node.inputs);
  }
  return seen;
}

export async function* sanityCheck(opts: SanityCheckOptions): AsyncGenerator<SanityDepth> {
  const { model, engine, signal } = opts;
  if (!Number.isInteger(opts.seed) || opts.seed < 0) throw invalidArgument(`seed must be a non-negative integer, got ${opts.seed}`);
  const order = cascadeOrder(model.graph);
  if (order.length === 0) throw invalidArgument('the model has no conv or dense layers to re-initialise');
  const requested = opts.maxDepth ?? 0;
  if (!Number.isInteger(requested) || requested < 0) throw invalidArgument(`max depth must be a non-negative integer, got ${requested}`);
  const maxDepth = requested === 0 ? order.length : Math.min(requested, order.length);
  const total = maxDepth + 1;

  const trained = await collectSimilarity({ ...opts, rankImages: 0 });
  const { classes, layers } = trained.curves;
  const trainedStats = new Map<string, LayerStats>();
  for (const l of trained.layers) trainedStats.set(`${l.classIndex}:${l.layer}`, { mean: l.mean, std: l.std, dead: l.dead.length });
  yield {
    kind: 'depth',
    depth: 0,
    reinitialised: [],
    curves: trained.curves,
    difference: new Float32Array(layers.length),
    recomputed: layers,
    done: 1,
    total,
  };

  const upstream = new Map(layers.map((l) => [l, upstreamNodes(model.graph, model.convLayers[l].output)]));
  for (let depth = 1; depth <= maxDepth; depth++) {
    throwIfAborted(signal);
    const reinitialised = order.slice(0, depth);
    const affected =
      opts.method === 2 ? layers : layers.filter((l) => reinitialised.some((name) => upstream.get(l)!.has(name)));
    const stats = new Map(trainedStats);
    if (affected.length > 0) {
      const copy = reinitialise(model, reinitialised, opts.seed, `${model.id}+reinit:${opts.seed}:${depth}`);
      try {
        const run = await collectSimilarity({ ...opts, model: copy, layers: affected, classes, rankImages: 0 });
        for (const l of run.layers) stats.set(`${l.classIndex}:${l.layer}`, { mean: l.mean, std: l.std, dead: l.dead.length });
      } finally {
        await engine.release(copy.id);
      }
    }
    const curves = buildCurves(
      classes,
      layers,
      classes.map((c) => layers.map((l) => stats.get(`${c}:${l}`)!)),
    );
    const difference = curves.meanOverClasses.map((v, i) => v - trained.curves.meanOverClasses[i]);
    yield { kind: 'depth', depth, reinitialised, curves, difference, recomputed: affected, done: depth + 1, total };
  }
}
