/**
 * Batched attribution graphs: one tensor graph (ONNX operator semantics; ./tensor-graph.ts) that runs the
 * forward pass once for one image and then a backward pass for B objectives at once (SPEC §2). The
 * onnxruntime engine runs its ONNX encoding; the tfjs engine interprets it.
 *
 *   inputs  `input`  float [1, C, H, W]   the image, in the model's input space
 *           `select` float [B, K]         row b weights the K per-channel objectives (normally one-hot);
 *                                         K = channels of conv layer `layer`, or the number of classes
 *   output  `attribution` float [B, C, H, W] = d(sum_k select[b,k] * objective_k) / d(input)
 *           (with `wrt`: [B, C_k, H_k, W_k], the same derivative with respect to conv layer k's output)
 *
 * Objectives: conv channel k of z_j: abs_sum = sum |z_j[k]| (seed sign(z_j[k])), relu_sum =
 * sum relu(z_j[k]) (seed z_j[k] > 0); logit: the seed is the select row on the logits.
 * Rules at ReLU: gradient passes where the forward input > 0; guided where the forward input > 0 and the
 * incoming gradient > 0; deconv passes the positive incoming gradient. Other activations apply their
 * derivative, and under guided/deconv also drop negative incoming gradients.
 *
 * Each backward pass is linear in the seed, so the forward values (masks, pool arg-maxes) are computed
 * once at batch 1 and broadcast over the B rows.
 *
 * The graph is plain (ConvTranspose conv backward, ScatterElements max-pool backward, a dense seed map) except
 * where a device pass in `passes` (./passes) applies; the default is every pass (onnxruntime on CPU).
 */
import type { IrGraph, IrNode, PoolOp, Shape } from './ir';
import { OnnxBuilder } from './onnx-builder';
import { encodeOnnx } from './onnx-encode';
import type { TensorGraph } from './tensor-graph';
import { ForwardEmitter, poolAttrs } from './ir-to-onnx';
import { activationValue, convLayers } from './layers';
import { ancestors } from './ir-util';
import { shapeSize } from './ir-shapes';
import { invalidArgument, unimplemented } from '../errors';
import { opDef } from './ops';
import type { BackwardContext } from './passes/context';
import { ALL_PASSES, type PassSet } from './passes';
import { convAsDenseApplies, denseConvBackward } from './passes/conv-as-dense';
import { flippedConvApplies, flippedConvBackward } from './passes/flipped-conv';
import { PackedLayout, packedConvApplies } from './passes/packed-conv';
import { isTilingPool, tilingPoolBackward } from './passes/pool-resize';
import { poolConvBackward, poolConvFusedApplies } from './passes/pool-conv-fused';
import { seedThroughConv, seedThroughConvApplies } from './passes/seed-through-conv';
import { oneHotFromIndices, scatterBackward } from './passes/pool-indices';
import { poolTaps, tapsBackward, tapsOneHot, type PoolTaps } from './max-pool-taps';

export type AttributionSpec =
  | { target: 'conv'; layer: number; objective: 'abs_sum' | 'relu_sum' }
  | { target: 'logit' };

export type { AttributionRule } from './ops/op';
import type { AttributionRule } from './ops/op';

/**
 * A point of the network a backward can stop at: conv layer k's output z_k (`at: 'conv'`, after a folded
 * batch-norm, before the activation) or its activation A_k (`at: 'activation'`, the default: the feature maps
 * class-activation-map methods weight; z_k when the layer has no activation).
 */
export interface LayerPoint {
  layer: number;
  at?: 'conv' | 'activation';
}

export interface AttributionExportOptions {
  /** Device passes to use (default: all of them). */
  passes?: PassSet;
  /** Differentiate with respect to this layer's output instead of the input. */
  wrt?: LayerPoint;
}

const BACKWARD_OPSET = 16; // ScatterElements with reduction

/** The IR value of a layer point, validated. */
export function layerPointValue(g: IrGraph, p: LayerPoint): string {
  const layers = convLayers(g);
  if (!Number.isInteger(p.layer) || p.layer < 0 || p.layer >= layers.length) {
    throw invalidArgument(`wrt: conv layer ${p.layer} does not exist (the model has ${layers.length} conv layers)`);
  }
  const at = p.at ?? 'activation';
  if (at !== 'conv' && at !== 'activation') throw invalidArgument(`wrt: unknown layer point '${String(at)}' (conv or activation)`);
  const l = layers[p.layer];
  return at === 'conv' ? l.output : activationValue(g, l);
}

/** The attribution graph as ONNX bytes (what the onnxruntime engine runs). */
export function exportAttribution(
  g: IrGraph,
  spec: AttributionSpec,
  rule: AttributionRule,
  opts: AttributionExportOptions = {},
): Uint8Array {
  return encodeOnnx(buildAttribution(g, spec, rule, opts));
}

/** The attribution graph as a tensor graph: every engine executes this one graph. */
export function buildAttribution(
  g: IrGraph,
  spec: AttributionSpec,
  rule: AttributionRule,
  opts: AttributionExportOptions = {},
): TensorGraph {
  if (rule !== 'gradient' && rule !== 'guided' && rule !== 'deconv') throw invalidArgument(`unknown attribution rule '${String(rule)}'`);
  let target: string;
  let seedKind: 'abs_sum' | 'relu_sum' | 'logit';
  if (spec.target === 'conv') {
    const layers = convLayers(g);
    if (!Number.isInteger(spec.layer) || spec.layer < 0 || spec.layer >= layers.length) {
      throw invalidArgument(`conv layer ${spec.layer} does not exist (the model has ${layers.length} conv layers)`);
    }
    if (spec.objective !== 'abs_sum' && spec.objective !== 'relu_sum') {
      throw invalidArgument(`unknown neuron objective '${String(spec.objective)}'`);
    }
    target = layers[spec.layer].output;
    seedKind = spec.objective;
  } else if (spec.target === 'logit') {
    target = g.output;
    seedKind = 'logit';
  } else {
    throw invalidArgument(`unknown attribution target '${String((spec as { target: unknown }).target)}'`);
  }
  const source = opts.wrt ? layerPointValue(g, opts.wrt) : g.input.name;
  return new AttributionBuilder(g, rule, opts.passes ?? ALL_PASSES).build(target, seedKind, source);
}

class AttributionBuilder {
  private readonly b = new OnnxBuilder('attribution');
  private readonly fwd = new Map<string, string>();
  /** Forward arg-max one-hots / indices of pooling nodes, by node name. */
  private readonly poolIndices = new Map<string, string>();
  /** Without pass pool-indices: each max pool's window taps (./max-pool-taps.ts), by node name. */
  private readonly poolTaps = new Map<string, PoolTaps>();
  /** Gradients in packed-conv's layout (when that pass is on). */
  private readonly packed: PackedLayout | undefined;
  private readonly em: ForwardEmitter;
  private readonly input: string;
  private readonly ctx: BackwardContext;

  constructor(
    private readonly g: IrGraph,
    private readonly rule: AttributionRule,
    private readonly passes: PassSet,
  ) {
    this.input = this.b.input('input', [1, ...g.input.shape]);
    this.em = new ForwardEmitter(this.b, g, this.input, passes);
    this.packed = passes.has('packed-conv') ? new PackedLayout(this.b) : undefined;
    this.ctx = {
      b: this.b,
      em: this.em,
      rule,
      shape: (v) => this.shape(v),
      fwd: (v) => this.fwd.get(v) as string,
      positive: (x) => this.positive(x),
      argMaxOneHot: (n) => this.argMaxOneHot(n),
      batch: (v) => this.batch(v),
    };
  }

  private shape(v: string): Shape {
    return this.g.shapes.get(v) as Shape;
  }

  private batch(v: string): string {
    return this.packed ? this.packed.batch(v) : v;
  }

  /** Builds the graph of d(objectives at `target`)/d(`source`) (the input, or a layer point). */
  build(target: string, seedKind: 'abs_sum' | 'relu_sum' | 'logit', source: string): TensorGraph {
    const b = this.b;
    const g = this.g;
    const passes = this.passes;
    const select = b.input('select', ['B', seedKind === 'logit' ? shapeSize(this.shape(target)) : this.shape(target)[0]]);
    b.reserve('attribution');
    const nodes = ancestors(g, target);

    // forward, batch 1
    this.fwd.set(g.input.name, this.input);
    for (const n of nodes) this.fwd.set(n.output, this.forwardNode(n));

    // which values carry gradient
    const live = new Set<string>([source]);
    for (const n of nodes) if (n.inputs.some((v) => live.has(v))) live.add(n.output);
    if (!live.has(target)) {
      throw invalidArgument(source === g.input.name ? 'the attribution target does not depend on the input' : 'the attribution target does not depend on the wrt layer (it must come before the target)');
    }

    // backward
    const producers = new Map(nodes.map((n) => [n.output, n]));
    const uses = new Map<string, number>();
    for (const n of nodes) for (const v of n.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
    const done = new Set<IrNode>();
    const grads = new Map<string, string[]>();
    const add = (v: string, gx: string): void => {
      if (live.has(v)) grads.set(v, [...(grads.get(v) ?? []), gx]);
    };
    // a node may be folded into the backward of its reader when its output is not the target or the source
    const foldable = (n: IrNode | undefined): n is IrNode =>
      !!n && uses.get(n.output) === 1 && n.output !== target && n.output !== source && live.has(n.inputs[0]);

    // seed
    const tShape = this.shape(target);
    const targetConv = producers.get(target);
    if (seedKind === 'logit') {
      grads.set(target, [tShape.length === 1 ? select : b.node('Reshape', [select, b.ints('seed_shape', [-1, ...tShape])])]);
    } else {
      const z = this.fwd.get(target) as string;
      const s = seedKind === 'abs_sum' ? b.node('Sign', [z]) : this.positive(z);
      if (passes.has('seed-through-conv') && targetConv?.op.op === 'conv' && target !== source && live.has(targetConv.inputs[0]) && seedThroughConvApplies(targetConv.op)) {
        done.add(targetConv);
        add(targetConv.inputs[0], seedThroughConv(this.ctx, targetConv, s, select));
      } else {
        const axes = tShape.slice(1).map((_, i) => i + 2);
        const sel = axes.length ? b.node('Unsqueeze', [select, b.ints('axes', axes)]) : select;
        grads.set(target, [b.node('Mul', [sel, s])]);
      }
    }
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i];
      const parts = grads.get(n.output);
      if (n.output === source || done.has(n) || !parts || !live.has(n.output)) continue;
      const gy = parts.length === 1 ? parts[0] : b.node('Sum', parts.map((p) => this.batch(p)));
      if (n.op.op === 'max_pool' && isTilingPool(this.ctx, n) && (passes.has('pool-resize') || passes.has('pool-conv-fused'))) {
        // a ReLU whose only reader is this pool is folded into the pool's routing mask
        const r = producers.get(n.inputs[0]);
        const relu = r && r.op.op === 'relu' && foldable(r) ? r : undefined;
        const conv = relu ? producers.get(relu.inputs[0]) : undefined;
        if (relu && passes.has('pool-conv-fused') && foldable(conv) && poolConvFusedApplies(this.ctx, n, conv)) {
          done.add(relu);
          done.add(conv);
          add(conv.inputs[0], poolConvBackward(this.ctx, n, this.batch(gy), relu, conv));
          continue;
        }
        if (passes.has('pool-resize')) {
          if (relu) done.add(relu);
          add(relu ? relu.inputs[0] : n.inputs[0], tilingPoolBackward(this.ctx, n, gy, relu, this.packed));
          continue;
        }
      }
      const packedOk = n.op.op === 'conv' || n.op.op === 'relu';
      this.backwardNode(n, packedOk ? gy : this.batch(gy), (k, gx) => add(n.inputs[k], gx));
    }
    const parts = grads.get(source);
    if (!parts) throw invalidArgument('no gradient reaches the input');
    b.node(parts.length === 1 ? 'Identity' : 'Sum', parts.map((p) => this.batch(p)), {}, 'attribution');
    b.output('attribution', ['B', ...this.shape(source)]);
    return b.graph(BACKWARD_OPSET);
  }

  private positive(x: string): string {
    const b = this.b;
    return b.node('Cast', [b.node('Greater', [x, b.floats('zero', [0], [])])], { to: { i: 1 } });
  }

  /** Forward emission; max pools also produce arg-max indices for their backward. */
  private forwardNode(n: IrNode): string {
    const b = this.b;
    const ins = n.inputs.map((v) => this.fwd.get(v) as string);
    const op = n.op;
    if (op.op === 'max_pool' || op.op === 'global_max_pool') {
      const inShape = this.shape(n.inputs[0]);
      const pool: PoolOp =
        op.op === 'max_pool'
          ? op
          : {
              op: 'max_pool',
              kernel: [inShape[1], inShape[2]],
              strides: [1, 1],
              pads: [0, 0, 0, 0],
              ceilMode: false,
              countIncludePad: false,
            };
      if (this.passes.has('pool-indices')) {
        const [y, idx] = b.nodeN('MaxPool', [ins[0]], 2, poolAttrs(pool));
        this.poolIndices.set(n.name, idx);
        return y;
      }
      const y = b.node('MaxPool', [ins[0]], poolAttrs(pool));
      this.poolTaps.set(n.name, poolTaps(b, pool, ins[0], y, inShape, this.shape(n.output)));
      return y;
    }
    return this.em.emit(n, ins);
  }

  /**
   * Emits the input gradients of node `n` given its output gradient `gy` ([B, ...out]): conv and pooling
   * here (their device passes), a ReLU on a packed gradient here, every other op by its module's rule.
   */
  private backwardNode(n: IrNode, gy: string, give: (input: number, gx: string) => void): void {
    const b = this.b;
    const op = n.op;
    const x = this.fwd.get(n.inputs[0]) as string;
    const inShape = this.shape(n.inputs[0]);
    const outShape = this.shape(n.output);
    switch (op.op) {
      case 'conv':
        return give(0, this.convBackward(n, gy));
      case 'relu': {
        const p = this.packed?.of(gy);
        if (!this.packed || !p) break;
        if (this.rule === 'deconv') return give(0, this.packed.keep(b.node('Relu', [gy]), p));
        const g = this.rule === 'gradient' ? gy : b.node('Relu', [gy]);
        return give(0, this.packed.keep(b.node('Mul', [g, this.packed.mask(this.positive(x), p)]), { ...p, dirty: false }));
      }
      case 'max_pool':
      case 'global_max_pool':
        return give(0, this.maxPoolBackward(n, gy, inShape, outShape));
      case 'avg_pool':
        return give(0, this.avgPoolBackward(op, gy, inShape, outShape));
      case 'global_avg_pool': {
        const [, h, w] = inShape;
        const spread = b.floatInit('spread', [1, 1, h, w], new Float32Array(h * w).fill(1 / (h * w)));
        return give(0, b.node('Mul', [gy, spread]));
      }
    }
    const rule = opDef(op.op, `node ${n.name}`, 'attribution').backward;
    if (!rule) throw unimplemented(`node ${n.name}: op ${op.op} has no backward rule`);
    rule(op as never, {
      b,
      rule: this.rule,
      node: n,
      gy,
      x: (k = 0) => this.fwd.get(n.inputs[k]) as string,
      y: () => this.fwd.get(n.output) as string,
      inShape: (k = 0) => this.shape(n.inputs[k]),
      outShape: () => outShape,
      positive: (v) => this.positive(v),
      give,
      init: (name, dims) => this.em.init(name, dims),
      channelInit: (name, rank) => this.em.channelInit(name, rank),
    });
  }

  /** A conv's input gradient: the first pass that applies (conv-as-dense, packed-conv, flipped-conv), else ConvTranspose. */
  private convBackward(n: IrNode, gy: string): string {
    const op = n.op;
    if (op.op !== 'conv') throw new Error('not a conv');
    const inShape = this.shape(n.inputs[0]);
    const outShape = this.shape(n.output);
    const passes = this.passes;
    if (passes.has('conv-as-dense') && convAsDenseApplies(op, inShape, outShape)) return denseConvBackward(this.ctx, n, gy);
    if (this.packed && packedConvApplies(op, inShape, outShape)) return this.packed.conv(this.ctx, op, gy, inShape, outShape);
    gy = this.batch(gy);
    if (passes.has('flipped-conv') && flippedConvApplies(op, inShape)) return flippedConvBackward(this.ctx, op, gy);
    return this.transposedWindow(gy, this.em.init(op.weight), op.kernel, op.strides, op.pads, op.dilations, op.group, inShape, outShape);
  }

  /**
   * ConvTranspose that maps a [.., Ho, Wo] gradient back onto the [.., H, W] input of a window op with
   * these parameters (rows no window covered get zeros; windows reaching past the input are cropped).
   */
  private transposedWindow(
    gy: string,
    weight: string,
    kernel: [number, number],
    strides: [number, number],
    pads: [number, number, number, number],
    dil: [number, number],
    group: number,
    inShape: Shape,
    outShape: Shape,
  ): string {
    const begin = [pads[0], pads[1]];
    const end: number[] = [];
    const extra: number[] = [];
    for (let a = 0; a < 2; a++) {
      const span = (outShape[a + 1] - 1) * strides[a] + dil[a] * (kernel[a] - 1) + 1 - begin[a];
      // span = output length with no end padding; crop or extend to the input length
      const e = span - inShape[a + 1];
      end.push(Math.max(e, 0));
      extra.push(Math.max(-e, 0));
    }
    const useOutputPadding = extra.every((e, a) => e < strides[a] || e < dil[a]);
    const attrs = {
      kernel_shape: { ints: kernel },
      strides: { ints: strides },
      pads: { ints: [begin[0], begin[1], end[0], end[1]] },
      dilations: { ints: dil },
      group: { i: group },
      ...(useOutputPadding && extra.some((e) => e > 0) ? { output_padding: { ints: extra } } : {}),
    };
    const out = this.b.node('ConvTranspose', [gy, weight], attrs);
    if (useOutputPadding || extra.every((e) => e === 0)) return out;
    return this.b.node('Pad', [out, this.b.ints('pads', [0, 0, 0, 0, 0, 0, extra[0], extra[1]])]);
  }

  /** One-hot [1, C, H, W] of each window's arg-max: from the pool's indices (pass pool-indices), else its window taps. */
  private argMaxOneHot(n: IrNode): string {
    const inShape = this.shape(n.inputs[0]);
    const outShape = this.shape(n.output);
    const idx = this.poolIndices.get(n.name);
    if (idx) return oneHotFromIndices(this.ctx, idx, inShape, outShape);
    return tapsOneHot(this.b, this.poolTaps.get(n.name) as PoolTaps, this.windowOf(n, inShape), inShape, outShape);
  }

  /** Max pool in general (overlapping or padded windows): the gradient routed onto the arg-max positions. */
  private maxPoolBackward(n: IrNode, gy: string, inShape: Shape, outShape: Shape): string {
    const idx = this.poolIndices.get(n.name);
    if (idx) return scatterBackward(this.ctx, idx, gy, inShape, outShape);
    return tapsBackward(this.b, this.poolTaps.get(n.name) as PoolTaps, gy, this.windowOf(n, inShape), inShape, outShape);
  }

  /** The window of a max pool (a global max pool's is the whole map). */
  private windowOf(n: IrNode, inShape: Shape): Pick<PoolOp, 'kernel' | 'strides' | 'pads'> {
    const op = n.op;
    return op.op === 'max_pool' ? op : { kernel: [inShape[1], inShape[2]], strides: [1, 1], pads: [0, 0, 0, 0] };
  }

  private avgPoolBackward(op: PoolOp, gy: string, inShape: Shape, outShape: Shape): string {
    const b = this.b;
    const [c, h, w] = inShape;
    const [, ho, wo] = outShape;
    // the divisor of each output position, as onnxruntime computes it
    const inv = new Float32Array(ho * wo);
    let uniform = true;
    const size = (start: number, k: number, len: number, padEnd: number): number => {
      const endPadded = Math.min(start + k, len + padEnd);
      if (op.countIncludePad) return endPadded - start;
      return Math.min(start + k, len) - Math.max(start, 0);
    };
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++) {
        const sh = i * op.strides[0] - op.pads[0];
        const sw = j * op.strides[1] - op.pads[1];
        const d = size(sh, op.kernel[0], h, op.pads[2]) * size(sw, op.kernel[1], w, op.pads[3]);
        inv[i * wo + j] = 1 / d;
        if (inv[i * wo + j] !== inv[0]) uniform = false;
      }
    const scaled = uniform
      ? b.node('Mul', [gy, b.floats('inv', [inv[0]], [])])
      : b.node('Mul', [gy, b.floatInit('inv', [1, 1, ho, wo], inv)]);
    const ones = b.floatInit('ones', [c, 1, op.kernel[0], op.kernel[1]], new Float32Array(c * op.kernel[0] * op.kernel[1]).fill(1));
    return this.transposedWindow(scaled, ones, op.kernel, op.strides, op.pads, [1, 1], c, inShape, outShape);
  }
}
