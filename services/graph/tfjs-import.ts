/**
 * TensorFlow.js LayersModel (Keras JSON + weight shards) → graph IR.
 *
 * Keras tensors are NHWC; the IR is NCHW. Feature maps map one to one ([H, W, C] → [C, H, W]), kernels are
 * transposed, and a Flatten over a feature map with H·W > 1 yields a vector whose element order differs from
 * Keras' (IR: c, h, w; Keras: h, w, c). Such vectors carry a permutation (`perm[i]` = Keras index of IR element
 * i) that elementwise layers pass on and the next Dense / BatchNormalization absorbs into its weights.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { invalidArgument, unimplemented } from '../errors';
import type { IrGraph, IrNode, IrOp, Shape, WeightTensor } from './ir';
import { kerasActivation, kerasLayerReader, kerasVariableOrder } from './ops';
import { readLayersModelJson } from './tfjs-model-json';
import { decodeTfjsWeights, weightSpecsOf } from './tfjs-weights';
import type { KerasReadContext, KerasValue } from './ops/op';

interface KerasLayer {
  className: string;
  name: string;
  config: Record<string, unknown>;
  inbound: string[];
}

interface KerasModel {
  layers: KerasLayer[];
  inputs: string[];
  outputs: string[];
  /** Input shape of a Sequential model whose first layer carries it ([H, W, C] or [F]). */
  sequentialInputShape?: number[];
}

/** One Keras tensor as the IR holds it (ir perm and foldable: see KerasValue). */
type Value = KerasValue;

const SOFTMAX_DROPPED = 'softmax';

export function importTfjsLayers(modelJson: unknown, weights: ArrayBuffer | Uint8Array): IrGraph {
  const { json, model: config, topology } = readLayersModelJson(modelJson);
  const model = parseTopology(config);
  const bytes = weights instanceof Uint8Array ? weights : new Uint8Array(weights);
  const weightMap = decodeTfjsWeights(weightSpecsOf(json), bytes);
  return new Importer(model, weightMap, kerasMajor(json, topology)).run();
}

/**
 * The major version of the Keras that wrote the model: `keras_version` of the topology ('2.15.0', '3.3.3';
 * tfjs-layers writes 'tfjs-layers 4.x' and follows Keras 2) or `generatedBy` ('keras v3.3.3'); 2 when
 * neither says. Activations whose definition changed between versions (hard_sigmoid) depend on it.
 */
function kerasMajor(json: Record<string, unknown>, topology: Record<string, unknown>): number {
  const kv = typeof topology.keras_version === 'string' ? /^(\d+)\./.exec(topology.keras_version) : null;
  if (kv) return Number(kv[1]);
  const gb = typeof json.generatedBy === 'string' ? /^keras v?(\d+)\./i.exec(json.generatedBy) : null;
  return gb ? Number(gb[1]) : 2;
}

/** Reads model.json and the weight shards its manifest names (paths relative to model.json). */
export async function loadTfjsLayersFromDir(modelJsonPath: string): Promise<IrGraph> {
  let text: string;
  try {
    text = await fs.readFile(modelJsonPath, 'utf8');
  } catch (e) {
    throw invalidArgument(`cannot read tfjs model ${modelJsonPath}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`${modelJsonPath} is not JSON: ${(e as Error).message}`);
  }
  const manifest = readLayersModelJson(json, modelJsonPath).json.weightsManifest;
  if (!Array.isArray(manifest)) throw invalidArgument(`${modelJsonPath} has no weightsManifest`);
  const dir = path.dirname(modelJsonPath);
  const parts: Uint8Array[] = [];
  for (const group of manifest) {
    const paths = asRecord(group, 'weightsManifest entry').paths;
    if (!Array.isArray(paths)) throw invalidArgument(`${modelJsonPath}: a weightsManifest entry has no paths`);
    for (const p of paths) {
      if (typeof p !== 'string' || path.isAbsolute(p) || p.split(/[\\/]/).includes('..')) {
        throw invalidArgument(`${modelJsonPath}: weight path ${JSON.stringify(p)} must be relative and inside the model folder`);
      }
      try {
        parts.push(new Uint8Array(await fs.readFile(path.join(dir, p))));
      } catch (e) {
        throw invalidArgument(`cannot read weight shard ${p} of ${modelJsonPath}: ${(e as Error).message}`);
      }
    }
  }
  const total = parts.reduce((s, p) => s + p.byteLength, 0);
  const all = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.byteLength;
  }
  return importTfjsLayers(json, all);
}

// ---------------------------------------------------------------------------------------------------------
// Parsing

/** Keras model classes: as the whole model, or nested as a layer of another (inlined into it). */
const MODEL_CLASSES = new Set(['Sequential', 'Model', 'Functional']);
/** An internal pass-through layer: where a nested model's input and output meet the enclosing model. */
const NESTED_BOUNDARY = '__nested_model_boundary__';

/** The whole model: nested models inlined, layer names checked to be unique. */
function parseTopology(topology: Record<string, unknown>): KerasModel {
  const model = parseModel(topology, '');
  const seen = new Set<string>();
  for (const l of model.layers) {
    if (seen.has(l.name)) throw unimplemented(`layer name ${l.name} is used twice (in nested models); layer names must be unique`);
    seen.add(l.name);
  }
  return model;
}

/** One Keras model config `{class_name, config}`; `scope` names a nested model ('' for the whole model). */
function parseModel(topology: Record<string, unknown>, scope: string): KerasModel {
  const className = topology.class_name;
  const config = topology.config;
  if (className === 'Sequential') {
    const cfg = Array.isArray(config) ? { layers: config } : asRecord(config, 'Sequential config');
    const layersRaw = cfg.layers;
    if (!Array.isArray(layersRaw) || layersRaw.length === 0) throw invalidArgument(`Sequential model${scope ? ` ${scope}` : ''} has no layers`);
    const layers: KerasLayer[] = [];
    let prev = '';
    let inputShape: number[] | undefined;
    const inputName = scope ? `${scope}/input` : '__input__';
    layersRaw.forEach((raw, i) => {
      const l = asRecord(raw, 'layer');
      const cfg = plainNames(asRecord(l.config ?? {}, 'layer config'));
      const name = typeof cfg.name === 'string' ? cfg.name : typeof l.name === 'string' ? l.name : `layer_${i}`;
      const cls = String(l.class_name);
      if (i === 0) inputShape = batchShape(cfg);
      if (cls === 'InputLayer') {
        prev = name;
        layers.push({ className: cls, name, config: cfg, inbound: [] });
        return;
      }
      if (prev === '') {
        prev = inputName;
        layers.push({ className: 'InputLayer', name: prev, config: {}, inbound: [] });
      }
      if (MODEL_CLASSES.has(cls)) {
        const inner = nestedModel(name, l, [prev]);
        if (i === 0) inputShape = inner.inputShape;
        layers.push(...inner.layers);
      } else {
        layers.push({ className: cls, name, config: cfg, inbound: [prev] });
      }
      prev = name;
    });
    inputShape ??= Array.isArray(cfg.build_input_shape) ? cfg.build_input_shape.slice(1).map(Number) : undefined;
    const input = layers[0]!.name;
    return { layers, inputs: [input], outputs: [prev], sequentialInputShape: inputShape };
  }
  if (className === 'Model' || className === 'Functional') {
    const cfg = asRecord(config, 'model config');
    if (!Array.isArray(cfg.layers)) throw invalidArgument('functional model config has no layers');
    const layers = cfg.layers.flatMap((raw): KerasLayer[] => {
      const l = asRecord(raw, 'layer');
      const lcfg = plainNames(asRecord(l.config ?? {}, 'layer config'));
      const name = String(l.name ?? lcfg.name);
      const cls = String(l.class_name);
      const nodes = Array.isArray(l.inbound_nodes) ? l.inbound_nodes : [];
      if (nodes.length > 1) {
        throw unimplemented(`layer ${name} (${cls}) is called ${nodes.length} times; shared layers are not supported`);
      }
      const inbound = nodes.length ? inboundNames(nodes[0], name) : [];
      if (MODEL_CLASSES.has(cls)) return nestedModel(name, l, inbound).layers;
      return [{ className: cls, name, config: lcfg, inbound }];
    });
    return { layers, inputs: refNames(cfg.input_layers), outputs: refNames(cfg.output_layers) };
  }
  const where = scope ? `nested model ${scope}: ` : '';
  throw unimplemented(`${where}tfjs model class ${String(className)} is not supported (Sequential and functional models are)`);
}

/**
 * A model used as a layer of another, inlined: its input layer becomes a boundary reading the enclosing
 * model's tensor, and a boundary named after the nested model hands its output on (the enclosing layers
 * refer to the nested model by that name).
 */
function nestedModel(name: string, raw: Record<string, unknown>, inbound: string[]): { layers: KerasLayer[]; inputShape?: number[] } {
  const inner = parseModel(raw, name);
  if (inner.inputs.length !== 1 || inner.outputs.length !== 1) {
    throw unimplemented(`nested model ${name} has ${inner.inputs.length} inputs and ${inner.outputs.length} outputs; nested models with one of each are supported`);
  }
  if (inbound.length !== 1) throw invalidArgument(`nested model ${name} is called on ${inbound.length} tensors, expected one`);
  let inputShape = inner.sequentialInputShape;
  const layers = inner.layers.map((l): KerasLayer => {
    if (l.name !== inner.inputs[0]) return l;
    inputShape ??= batchShape(l.config);
    return { className: NESTED_BOUNDARY, name: l.name, config: {}, inbound };
  });
  layers.push({ className: NESTED_BOUNDARY, name, config: {}, inbound: [inner.outputs[0]!] });
  return { layers, inputShape };
}

/** The per-sample input shape a layer config declares (Keras 2 batch_input_shape / input_shape, Keras 3 batch_shape). */
function batchShape(cfg: Record<string, unknown>): number[] | undefined {
  const bis = cfg.batch_input_shape ?? cfg.batch_shape;
  if (Array.isArray(bis)) return bis.slice(1).map(Number);
  if (Array.isArray(cfg.input_shape)) return cfg.input_shape.map(Number);
  return undefined;
}

/**
 * Keras 2.13+ and Keras 3 serialize some config values as objects where older Keras wrote names: an
 * activation is `{module, class_name: 'function', config: 'relu', registered_name}`. Such values become
 * the names the op readers take.
 */
function plainNames(cfg: Record<string, unknown>): Record<string, unknown> {
  const act = cfg.activation;
  if (act && typeof act === 'object' && !Array.isArray(act)) {
    const a = act as Record<string, unknown>;
    if (typeof a.config === 'string') return { ...cfg, activation: a.config };
    if (typeof a.class_name === 'string') return { ...cfg, activation: a.class_name };
  }
  return cfg;
}

/** Keras 2 (`[[name, node, tensor, kwargs], ...]`) and Keras 3 (`{args: [keras tensors]}`) inbound nodes. */
function inboundNames(node: unknown, layer: string): string[] {
  if (Array.isArray(node)) {
    return node.map((ref) => {
      if (!Array.isArray(ref) || typeof ref[0] !== 'string') throw invalidArgument(`layer ${layer}: bad inbound node`);
      if (Number(ref[2] ?? 0) !== 0) throw unimplemented(`layer ${layer}: multi-output inbound layers are not supported`);
      return ref[0];
    });
  }
  const args = asRecord(node, `layer ${layer} inbound node`).args;
  const names: string[] = [];
  const visit = (a: unknown): void => {
    if (Array.isArray(a)) a.forEach(visit);
    else if (a && typeof a === 'object') {
      const hist = (a as { config?: { keras_history?: unknown } }).config?.keras_history;
      if (Array.isArray(hist) && typeof hist[0] === 'string') {
        if (Number(hist[2] ?? 0) !== 0) throw unimplemented(`layer ${layer}: multi-output inbound layers are not supported`);
        names.push(hist[0]);
      }
    }
  };
  visit(args);
  return names;
}

function refNames(refs: unknown): string[] {
  if (!Array.isArray(refs)) throw invalidArgument('functional model lacks input_layers / output_layers');
  // [[name, 0, 0], ...] or, for a single tensor, [name, 0, 0]
  if (typeof refs[0] === 'string') return [refs[0]];
  return refs.map((r) => {
    if (!Array.isArray(r) || typeof r[0] !== 'string') throw invalidArgument('bad input_layers / output_layers entry');
    return r[0];
  });
}

// ---------------------------------------------------------------------------------------------------------
// Conversion

class Importer {
  private readonly nodes: IrNode[] = [];
  private readonly weights = new Map<string, WeightTensor>();
  private readonly shapes = new Map<string, Shape>();
  private readonly values = new Map<string, Value>();
  private readonly consumers = new Map<string, number>();
  private readonly usedWeights = new Set<string>();

  constructor(
    private readonly model: KerasModel,
    private readonly source: Map<string, WeightTensor>,
    private readonly kerasMajor: number,
  ) {}

  run(): IrGraph {
    const { model } = this;
    if (model.inputs.length !== 1) throw unimplemented(`models with ${model.inputs.length} inputs are not supported`);
    if (model.outputs.length !== 1) throw unimplemented(`models with ${model.outputs.length} outputs are not supported`);
    for (const l of model.layers) for (const i of l.inbound) this.consumers.set(i, (this.consumers.get(i) ?? 0) + 1);
    const order = this.topologicalOrder();
    const last = this.outputLayer();
    let input: { name: string; shape: Shape } | undefined;
    for (const layer of order) {
      if (layer.className === 'InputLayer') {
        if (layer.name !== model.inputs[0]) throw unimplemented(`extra input layer ${layer.name}`);
        input = this.inputLayer(layer);
        continue;
      }
      const ins = layer.inbound.map((n) => {
        const v = this.values.get(n);
        if (!v) throw invalidArgument(`layer ${layer.name} reads ${n}, which is not defined before it`);
        return v;
      });
      this.values.set(layer.name, this.layer(layer, ins, layer.name === last));
    }
    if (!input) throw invalidArgument('the model has no input layer');
    const out = this.values.get(model.outputs[0]!);
    if (!out) throw invalidArgument(`output layer ${model.outputs[0]} was not built`);
    if (out.perm) throw unimplemented(`the model output ${model.outputs[0]} is a flattened feature map; add a Dense layer`);
    if (out.name === input.name) throw invalidArgument('the model has no layers between input and output');
    for (const k of this.source.keys()) {
      if (!this.usedWeights.has(k)) throw invalidArgument(`weight ${k} belongs to no supported layer`);
    }
    return { input, output: out.name, nodes: this.nodes, weights: this.weights, shapes: this.shapes };
  }

  /** The layer that computes the model output: the output layer, seen through nested models' boundaries. */
  private outputLayer(): string {
    const byName = new Map(this.model.layers.map((l) => [l.name, l]));
    let name = this.model.outputs[0]!;
    for (let l = byName.get(name); l?.className === NESTED_BOUNDARY && l.inbound.length === 1; l = byName.get(name)) name = l.inbound[0]!;
    return name;
  }

  private topologicalOrder(): KerasLayer[] {
    const byName = new Map(this.model.layers.map((l) => [l.name, l]));
    const order: KerasLayer[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string): void => {
      const s = state.get(name);
      if (s === 'done') return;
      if (s === 'visiting') throw invalidArgument(`the layer graph has a cycle at ${name}`);
      const l = byName.get(name);
      if (!l) throw invalidArgument(`unknown layer ${name}`);
      state.set(name, 'visiting');
      l.inbound.forEach(visit);
      state.set(name, 'done');
      order.push(l);
    };
    visit(this.model.outputs[0]!);
    return order;
  }

  private inputLayer(layer: KerasLayer): { name: string; shape: Shape } {
    const bis = layer.config.batch_input_shape ?? layer.config.batch_shape;
    const kerasShape = Array.isArray(bis) ? bis.slice(1).map(Number) : this.model.sequentialInputShape;
    if (!kerasShape || kerasShape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw invalidArgument(`input layer ${layer.name} needs a fixed input shape, got ${JSON.stringify(kerasShape)}`);
    }
    const shape = kerasShape.length === 3 ? [kerasShape[2]!, kerasShape[0]!, kerasShape[1]!] : kerasShape;
    const name = layer.name === '__input__' ? 'input' : layer.name;
    this.shapes.set(name, shape);
    this.values.set(layer.name, { name, shape, perm: null });
    return { name, shape };
  }

  private layer(layer: KerasLayer, ins: Value[], isOutput: boolean): Value {
    const cfg = layer.config;
    const one = (): Value => {
      if (ins.length !== 1) throw invalidArgument(`layer ${layer.name} (${layer.className}) takes one input, got ${ins.length}`);
      return ins[0]!;
    };
    switch (layer.className) {
      case 'BatchNormalization':
        return this.batchNorm(layer, one());
      case 'Activation':
        return this.activation(layer, one(), String(cfg.activation ?? 'linear'), isOutput, layer.name);
      case 'Softmax':
        if (!isOutput) throw unimplemented(`layer ${layer.name} (Softmax): softmax is supported only as the last layer`);
        return one();
      case NESTED_BOUNDARY:
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianDropout':
      case 'GaussianNoise':
      case 'AlphaDropout':
        return { ...one(), foldable: undefined };
    }
    const read = kerasLayerReader(layer.className);
    if (!read) throw unimplemented(`layer ${layer.name}: Keras layer class ${layer.className} is not supported`);
    return read(this.readContext(layer, ins, isOutput));
  }

  /** What an op module's Keras reader sees of `layer` (./ops/op.ts KerasReadContext). */
  private readContext(layer: KerasLayer, ins: Value[], isOutput: boolean): KerasReadContext {
    return {
      className: layer.className,
      name: layer.name,
      config: layer.config,
      inputs: ins,
      one: () => {
        if (ins.length !== 1) throw invalidArgument(`layer ${layer.name} (${layer.className}) takes one input, got ${ins.length}`);
        return ins[0]!;
      },
      requireMap: (x) => this.requireMap(layer, x),
      addNode: (name, op, inputs, shape) => this.addNode(name, op, inputs, shape),
      weight: (suffix, required = true) => this.weight(layer, suffix, required),
      addWeight: (name, shape, data) => this.addWeight(name, shape, data),
      expectShape: (t, shape) => expectShape(t, shape, layer),
      nodeOf: (v) => {
        const n = this.nodes.find((m) => m.output === v);
        if (!n) throw new Error(`tfjs import: no node produces ${v}`);
        return n;
      },
      activation: (x, act, nodeName) => this.activation(layer, x, act, isOutput, nodeName),
      flatten: (name, x) => this.flatten(name, x),
    };
  }

  // --- helpers -------------------------------------------------------------------------------------------

  /**
   * Weight `suffix` of `layer`: named `<layer>/<suffix>` (tfjs-layers, Keras 2, Keras 3 .h5; any scope before
   * it), or by position `<layer>/vars/<i>` (Keras 3 .keras files through tensorflowjs_converter), the
   * position from the layer's Keras 3 variable order.
   */
  private weight(layer: KerasLayer, suffix: string, required = true): WeightTensor | undefined {
    const named = this.sourceWeight(`${layer.name}/${suffix}`);
    if (named) return named;
    const i = this.variableOrder(layer).indexOf(suffix);
    const positional = i >= 0 ? this.sourceWeight(`${layer.name}/vars/${i}`) : undefined;
    if (positional) return positional;
    if (required) throw invalidArgument(`layer ${layer.name}: weight ${suffix} is missing from the weight manifest`);
    return undefined;
  }

  /** The manifest weight named `key` or ending in `/key`; marked used. */
  private sourceWeight(key: string): WeightTensor | undefined {
    for (const [k, w] of this.source) {
      if (k === key || k.endsWith(`/${key}`)) {
        this.usedWeights.add(k);
        return w;
      }
    }
    return undefined;
  }

  /** Keras 3's variable order for the layer (BatchNormalization's here, the others' from their op modules). */
  private variableOrder(layer: KerasLayer): string[] {
    const cfg = layer.config;
    if (layer.className === 'BatchNormalization') {
      return [...(cfg.scale === false ? [] : ['gamma']), ...(cfg.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
    }
    return kerasVariableOrder(layer.className, cfg);
  }

  private addWeight(name: string, shape: number[], data: Float32Array): string {
    this.weights.set(name, { shape, data });
    return name;
  }

  private addNode(name: string, op: IrOp, inputs: string[], shape: Shape): string {
    let unique = name;
    for (let i = 1; this.shapes.has(unique); i++) unique = `${name}_${i}`;
    this.nodes.push({ name: unique, inputs, output: unique, op });
    this.shapes.set(unique, shape);
    return unique;
  }

  private elementwise(name: string, op: IrOp, x: Value): Value {
    return { name: this.addNode(name, op, [x.name], x.shape), shape: x.shape, perm: x.perm };
  }

  /** Keras activation `act` on `x`: linear and a final softmax vanish; the others come from the op modules. */
  private activation(layer: KerasLayer, x: Value, act: string, isOutput: boolean, nodeName: string): Value {
    if (act === 'linear') return x;
    if (act === SOFTMAX_DROPPED) {
      if (!isOutput) throw unimplemented(`layer ${layer.name} (${layer.className}): softmax is supported only as the last layer`);
      return x;
    }
    const make = kerasActivation(act);
    if (!make) throw unimplemented(`layer ${layer.name} (${layer.className}): activation ${act} is not supported`);
    return this.elementwise(nodeName, make({ kerasMajor: this.kerasMajor }), x);
  }

  private requireMap(layer: KerasLayer, x: Value): [number, number, number] {
    if (x.shape.length !== 3) {
      throw unimplemented(`layer ${layer.name} (${layer.className}) needs a [H, W, C] input, got per-sample rank ${x.shape.length}`);
    }
    const fmt = layer.config.data_format;
    if (fmt !== undefined && fmt !== null && fmt !== 'channels_last') {
      throw unimplemented(`layer ${layer.name} (${layer.className}): data_format ${String(fmt)} is not supported`);
    }
    return [x.shape[0]!, x.shape[1]!, x.shape[2]!];
  }

  private batchNorm(layer: KerasLayer, x: Value): Value {
    const cfg = layer.config;
    const rank = x.shape.length;
    const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis ?? -1];
    if (axis.length !== 1 || !(Number(axis[0]) === -1 || Number(axis[0]) === rank)) {
      throw unimplemented(`layer ${layer.name} (BatchNormalization): only the channel axis (-1) is supported, got ${JSON.stringify(cfg.axis)}`);
    }
    const c = x.shape[0]!;
    const eps = Number(cfg.epsilon ?? 1e-3);
    const mean = this.weight(layer, 'moving_mean')!;
    const variance = this.weight(layer, 'moving_variance')!;
    const gamma = cfg.scale === false ? undefined : this.weight(layer, 'gamma');
    const beta = cfg.center === false ? undefined : this.weight(layer, 'beta');
    for (const t of [mean, variance, gamma, beta]) if (t) expectShape(t, [c], layer);
    const scale = new Float32Array(c);
    const shift = new Float32Array(c);
    for (let i = 0; i < c; i++) {
      const k = x.perm ? x.perm[i]! : i;
      scale[i] = (gamma ? gamma.data[k]! : 1) / Math.sqrt(variance.data[k]! + eps);
      shift[i] = (beta ? beta.data[k]! : 0) - mean.data[k]! * scale[i]!;
    }
    const conv = x.foldable?.node;
    if (conv && conv.op.op === 'conv' && this.consumers.get(x.foldable!.layer) === 1) {
      // Fold into the conv (IR convention): W'[o] = W[o]·s[o], b' = b·s + t.
      const w = this.weights.get(conv.op.weight)!;
      const per = w.data.length / c;
      for (let o = 0; o < c; o++) for (let i = 0; i < per; i++) w.data[o * per + i]! *= scale[o]!;
      const bias = conv.op.bias ? this.weights.get(conv.op.bias)!.data : new Float32Array(c);
      for (let o = 0; o < c; o++) bias[o] = bias[o]! * scale[o]! + shift[o]!;
      if (!conv.op.bias) conv.op.bias = this.addWeight(`${conv.name}/bias`, [c], bias);
      conv.op.batchNormFolded = true;
      return { name: x.name, shape: x.shape, perm: null };
    }
    const sName = this.addWeight(`${layer.name}/scale`, [c], scale);
    const tName = this.addWeight(`${layer.name}/shift`, [c], shift);
    return this.elementwise(layer.name, { op: 'affine', scale: sName, shift: tName }, x);
  }

  private flatten(name: string, x: Value): Value {
    const size = x.shape.reduce((a, b) => a * b, 1);
    let perm: Int32Array | null = x.perm;
    if (x.shape.length === 3 && x.shape[1]! * x.shape[2]! > 1) {
      const [c, h, w] = x.shape as [number, number, number];
      perm = new Int32Array(size);
      for (let ci = 0; ci < c; ci++)
        for (let hi = 0; hi < h; hi++) for (let wi = 0; wi < w; wi++) perm[(ci * h + hi) * w + wi] = (hi * w + wi) * c + ci;
    } else if (x.shape.length > 1 && x.shape.length !== 3) {
      throw unimplemented(`layer ${name} (Flatten) of a per-sample rank-${x.shape.length} tensor is not supported`);
    }
    if (x.shape.length === 1) return x;
    const out = this.addNode(name, { op: 'flatten' }, [x.name], [size]);
    return { name: out, shape: [size], perm };
  }
}

// ---------------------------------------------------------------------------------------------------------

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function expectShape(t: WeightTensor, shape: number[], layer: KerasLayer): void {
  if (!sameShape(t.shape, shape)) {
    throw invalidArgument(`layer ${layer.name}: weight of shape ${JSON.stringify(t.shape)}, expected ${JSON.stringify(shape)}`);
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
