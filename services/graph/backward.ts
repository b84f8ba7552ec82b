/**
 * Batched attribution graphs: one tensor graph (ONNX operator semantics; ./tensor-graph.ts) that runs the forward pass once for one image and
 * then a backward pass for B objectives at once (SPEC §2).
 *
 *   inputs  `input`  float [1, C, H, W]   the image, in the model's input space
 *           `select` float [B, K]         row b weights the K per-channel objectives (normally one-hot);
 *                                         K = channels of conv layer `layer`, or the number of classes
 *   output  `attribution` float [B, C, H, W] = d(sum_k select[b,k] * objective_k) / d(input)
 *
 * Objectives: conv channel k of z_j: abs_sum = sum |z_j[k]| (seed sign(z_j[k])), relu_sum =
 * sum relu(z_j[k]) (seed z_j[k] > 0); logit: the seed is the select row on the logits.
 * Rules at ReLU: gradient passes where the forward input > 0; guided where the forward input > 0 and the
 * incoming gradient > 0; deconv passes the positive incoming gradient. Other activations apply their
 * derivative, and under guided/deconv also drop negative incoming gradients.
 *
 * Each backward pass is linear in the seed, so the forward values (masks, pool arg-maxes) are computed
 * once at batch 1 and broadcast over the B rows.
 */
import type { IrGraph, IrNode, PoolOp, Shape } from './ir';
import { OnnxBuilder } from './onnx-builder';
import { encodeOnnx } from './onnx-encode';
import type { TensorGraph } from './tensor-graph';
import { ForwardEmitter, poolAttrs } from './ir-to-onnx';
import { convLayers } from './layers';
import { ancestors } from './ir-util';
import { shapeSize } from './ir-shapes';
import { DENSE_MAX_ENTRIES, denseEntries, denseIsCheaper } from './conv-as-dense';
import { invalidArgument, unimplemented } from '../errors';
import { opDef } from './ops';

export type AttributionSpec =
  | { target: 'conv'; layer: number; objective: 'abs_sum' | 'relu_sum' }
  | { target: 'logit' };

export type { AttributionRule } from './ops/op';
import type { AttributionRule } from './ops/op';

/**
 * How a convolution's input gradient is computed (all exact; speed differs by shape and engine):
 * - conv_transpose: ConvTranspose with the conv's own weights;
 * - flipped_conv: Conv with transposed, flipped weights (stride-1 convs; others use ConvTranspose);
 * - dense: one MatMul with the conv unrolled to a [Cout*Ho*Wo, Cin*H*W] matrix (up to 16M entries;
 *   larger ones use auto's choice);
 * - packed: flipped_conv over the batch laid side by side as one wide image (stride-1 convs that keep the
 *   map size; others as flipped_conv);
 * - auto (default): dense where it needs no more multiply-adds than the conv (tiny feature maps, e.g.
 *   VGG's 2x2 layers), packed on maps up to 4 wide (VGG's 4x4 layers) with 8 or more input channels,
 *   ConvTranspose for strided convs and for fewer than 8 input channels, flipped_conv otherwise. Chosen from
 *   measurements on ORT CPU with one thread (bench/graph-gbp.ts).
 */
export type ConvBackwardForm = 'auto' | 'conv_transpose' | 'flipped_conv' | 'dense' | 'packed';

export interface AttributionExportOptions {
  convBackward?: ConvBackwardForm;
}

const BACKWARD_OPSET = 16; // ScatterElements with reduction
/**
 * `auto` packs a batch side by side (packedConv) for convs on maps at most this wide. VGG11 on ORT CPU, one
 * thread, 64 rows a run: the 4×4 layers' backward 10–15% faster; packing the 8×8 layers too lost.
 */
const PACKED_MAX_WIDTH = 4;

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
  return new AttributionBuilder(g, rule, opts.convBackward ?? 'auto').build(target, seedKind);
}

/** A gradient laid out [C, H, B, W+gap]: the batch side by side along the width (packedConv). */
interface Packed {
  c: number;
  h: number;
  w: number;
  gap: number;
  /** Whether the gap columns may hold non-zeros. */
  dirty: boolean;
}

class AttributionBuilder {
  private readonly b = new OnnxBuilder('attribution');
  private readonly fwd = new Map<string, string>();
  /** Forward arg-max one-hots / indices of pooling nodes, by node name. */
  private readonly poolIndices = new Map<string, string>();
  /** Gradients held in the packed layout (see packedConv), and their batch-layout copies once made. */
  private readonly packed = new Map<string, Packed>();
  private readonly unpacked = new Map<string, string>();
  private readonly em: ForwardEmitter;
  private readonly input: string;

  constructor(
    private readonly g: IrGraph,
    private readonly rule: AttributionRule,
    private readonly convForm: ConvBackwardForm,
  ) {
    this.input = this.b.input('input', [1, ...g.input.shape]);
    this.em = new ForwardEmitter(this.b, g, this.input);
  }

  private shape(v: string): Shape {
    return this.g.shapes.get(v) as Shape;
  }

  build(target: string, seedKind: 'abs_sum' | 'relu_sum' | 'logit'): TensorGraph {
    const b = this.b;
    const g = this.g;
    const select = b.input('select', ['B', seedKind === 'logit' ? shapeSize(this.shape(target)) : this.shape(target)[0]]);
    b.reserve('attribution');
    const nodes = ancestors(g, target);

    // forward, batch 1
    this.fwd.set(g.input.name, this.input);
    for (const n of nodes) this.fwd.set(n.output, this.forwardNode(n));

    // which values carry gradient
    const live = new Set<string>([g.input.name]);
    for (const n of nodes) if (n.inputs.some((v) => live.has(v))) live.add(n.output);
    if (!live.has(target)) throw invalidArgument('the attribution target does not depend on the input');

    // backward
    const producers = new Map(nodes.map((n) => [n.output, n]));
    const uses = new Map<string, number>();
    for (const n of nodes) for (const v of n.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
    const done = new Set<IrNode>();
    const grads = new Map<string, string[]>();
    const add = (v: string, gx: string): void => {
      if (live.has(v)) grads.set(v, [...(grads.get(v) ?? []), gx]);
    };

    // seed
    const tShape = this.shape(target);
    const targetConv = producers.get(target);
    if (seedKind === 'logit') {
      grads.set(target, [tShape.length === 1 ? select : b.node('Reshape', [select, b.ints('seed_shape', [-1, ...tShape])])]);
    } else {
      const z = this.fwd.get(target) as string;
      const s = seedKind === 'abs_sum' ? b.node('Sign', [z]) : this.positive(z);
      if (targetConv && this.seedThroughConvOk(targetConv)) {
        // The seed rows are select-weighted channels of one map: through the target's own conv as a
        // per-channel product computed once, then one [B, C] x [C, Cin*H*W] MatMul (seedThroughConv).
        done.add(targetConv);
        add(targetConv.inputs[0], this.seedThroughConv(targetConv, s, select));
      } else {
        const axes = tShape.slice(1).map((_, i) => i + 2);
        const sel = axes.length ? b.node('Unsqueeze', [select, b.ints('axes', axes)]) : select;
        grads.set(target, [b.node('Mul', [sel, s])]);
      }
    }
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i];
      const parts = grads.get(n.output);
      if (done.has(n) || !parts || !live.has(n.output)) continue;
      const gy = parts.length === 1 ? parts[0] : b.node('Sum', parts.map((p) => this.batch(p)));
      if (n.op.op === 'max_pool' && this.tilingPool(n)) {
        // a ReLU whose only consumer is this pool is folded into the pool's routing mask
        const r = producers.get(n.inputs[0]);
        const relu = r && r.op.op === 'relu' && uses.get(r.output) === 1 && r.output !== target ? r : undefined;
        if (relu) done.add(relu);
        const conv = relu ? producers.get(relu.inputs[0]) : undefined;
        if (relu && conv && uses.get(conv.output) === 1 && conv.output !== target && this.poolConvFusable(n, conv)) {
          done.add(conv);
          add(conv.inputs[0], this.poolConvBackward(n, this.batch(gy), relu, conv));
          continue;
        }
        add(relu ? relu.inputs[0] : n.inputs[0], this.tilingPoolBackward(n, gy, relu));
        continue;
      }
      const packedOk = n.op.op === 'conv' || n.op.op === 'relu';
      this.backwardNode(n, packedOk ? gy : this.batch(gy), (k, gx) => add(n.inputs[k], gx));
    }
    const parts = grads.get(g.input.name);
    if (!parts) throw invalidArgument('no gradient reaches the input');
    b.node(parts.length === 1 ? 'Identity' : 'Sum', parts.map((p) => this.batch(p)), {}, 'attribution');
    b.output('attribution', ['B', ...g.input.shape]);
    return b.graph(BACKWARD_OPSET);
  }

  /** Whether seedThroughConv applies: a stride-1, undilated, ungrouped conv with padding under the kernel size. */
  private seedThroughConvOk(n: IrNode): boolean {
    const op = n.op;
    if (op.op !== 'conv' || op.group !== 1) return false;
    const [kh, kw] = op.kernel;
    return (
      op.strides.every((s) => s === 1) &&
      op.dilations.every((d) => d === 1) &&
      op.pads[0] < kh && op.pads[2] < kh && op.pads[1] < kw && op.pads[3] < kw
    );
  }

  /**
   * The gradient at the input of the target's conv for seed rows select[b, c] * s[c, y, x] (s: the sign
   * or positive part of z, one [1, C, Ho, Wo] map). Row b is sum_c select[b, c] * M[c], where M[c] =
   * W[c] correlated with s[c] (a [Cin, H, W] image): M is one batched MatMul, W [C, Cin, kh*kw] x the
   * kh*kw shifted copies of s [C, kh*kw, H*W], computed once per run instead of a dense backward conv on
   * B rows that are zero outside one channel each (3-6x less time for that step on ORT CPU, 64 rows).
   */
  private seedThroughConv(n: IrNode, s: string, select: string): string {
    const b = this.b;
    const op = n.op;
    if (op.op !== 'conv') throw new Error('not a conv');
    const [cin, h, w] = this.shape(n.inputs[0]);
    const [c, ho, wo] = this.shape(n.output);
    const [kh, kw] = op.kernel;
    const [pt, pl] = op.pads;
    // P[u, v] = s[u - (kh-1), v - (kw-1)] (zero outside); tap (a, e) reads s[y + pt - a, x + pl - e].
    const padded = b.node('Pad', [b.node('Reshape', [s, b.ints('shape', [c, 1, ho, wo])]), b.ints('pads', [0, 0, kh - 1, kw - 1, 0, 0, kh - 1, kw - 1])]);
    const taps: string[] = [];
    for (let a = 0; a < kh; a++) {
      for (let e = 0; e < kw; e++) {
        const r0 = pt - a + kh - 1;
        const c0 = pl - e + kw - 1;
        taps.push(b.node('Slice', [padded, b.ints('starts', [r0, c0]), b.ints('ends', [r0 + h, c0 + w]), b.ints('axes', [2, 3])]));
      }
    }
    const shifted = b.node('Reshape', [b.node('Concat', taps, { axis: { i: 1 } }), b.ints('shape', [c, kh * kw, h * w])]);
    const weight = this.em.init(op.weight, [c, cin, kh * kw]);
    const m = b.node('Reshape', [b.node('MatMul', [weight, shifted]), b.ints('shape', [c, cin * h * w])]);
    return b.node('Reshape', [b.node('MatMul', [select, m]), b.ints('shape', [-1, cin, h, w])]);
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
      const [y, idx] = b.nodeN('MaxPool', [ins[0]], 2, poolAttrs(pool));
      this.poolIndices.set(n.name, idx);
      return y;
    }
    return this.em.emit(n, ins);
  }

  /**
   * Emits the input gradients of node `n` given its output gradient `gy` ([B, ...out]): conv and pooling
   * here (their device-specific forms), a ReLU on a packed gradient here, every other op by its module's rule.
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
        const p = this.packed.get(gy);
        if (!p) break;
        if (this.rule === 'deconv') return give(0, this.keepPacked(b.node('Relu', [gy]), p));
        const g = this.rule === 'gradient' ? gy : b.node('Relu', [gy]);
        return give(0, this.keepPacked(b.node('Mul', [g, this.packedMask(this.positive(x), p)]), { ...p, dirty: false }));
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

  private convBackward(n: IrNode, gy: string): string {
    const b = this.b;
    const op = n.op;
    if (op.op !== 'conv') throw new Error('not a conv');
    const inShape = this.shape(n.inputs[0]);
    const outShape = this.shape(n.output);
    const [cin, h, w] = inShape;
    const [cout, ho, wo] = outShape;
    const [kh, kw] = op.kernel;
    const form = this.convForm;
    const [dh, dw] = op.dilations;
    const [pt, pl, pb, pr] = op.pads;
    const strideOne = op.strides[0] === 1 && op.strides[1] === 1;
    const fp = [dh * (kh - 1) - pt, dw * (kw - 1) - pl, dh * (kh - 1) - pb, dw * (kw - 1) - pr];
    const same = h === ho && w === wo;
    const denseOk = denseEntries(inShape, outShape) <= DENSE_MAX_ENTRIES;
    if (denseOk && (form === 'dense' || (form === 'auto' && denseIsCheaper(op, inShape)))) {
      const flat = b.node('Reshape', [this.batch(gy), b.ints('shape', [-1, cout * ho * wo])]);
      const gx = b.node('MatMul', [flat, this.em.denseConvInit(n)]);
      return b.node('Reshape', [gx, b.ints('shape', [-1, ...inShape])]);
    }
    const packedWanted = form === 'packed' || (form === 'auto' && cin >= 8 && PACKED_MAX_WIDTH >= w);
    if (packedWanted && strideOne && same && fp.every((p) => p >= 0)) {
      return this.packedConv(gy, this.flippedWeight(op.weight, op.group), op.kernel, fp, op.dilations, op.group, cout, cin, h, w);
    }
    const flippedWanted = form === 'flipped_conv' || (form === 'auto' && cin >= 8) || form === 'dense' || form === 'packed';
    gy = this.batch(gy);
    if (flippedWanted && strideOne && fp.every((p) => p >= 0)) {
      return b.node('Conv', [gy, this.flippedWeight(op.weight, op.group)], {
        kernel_shape: { ints: op.kernel },
        pads: { ints: fp },
        dilations: { ints: op.dilations },
        group: { i: op.group },
      });
    }
    return this.transposedWindow(gy, this.em.init(op.weight), op.kernel, op.strides, op.pads, op.dilations, op.group, inShape, outShape);
  }

  /**
   * A stride-1, size-preserving conv of a [B, Cin, H, W] batch run as one conv of a single [1, Cin, H, B·(W+gap)]
   * image: the B images side by side along the width, separated by `gap` zero columns (at least the widest
   * side padding), so no window reaches from one image into the next. One wide image keeps onnxruntime's conv
   * kernels busy where per-image maps of 4×4 or 8×8 give them too few columns. Exact: every output column of an
   * image reads only its own image and zeros. The result stays packed ([Cout, H, B, W+gap], its gap columns
   * holding garbage) for the ReLU / max-pool backward that follows; `batch` unpacks it where needed.
   */
  private packedConv(
    x: string,
    weight: string,
    kernel: [number, number],
    pads: number[],
    dil: [number, number],
    group: number,
    cin: number,
    cout: number,
    h: number,
    w: number,
  ): string {
    const b = this.b;
    const need = Math.max(pads[1], pads[3]);
    let p = this.packed.get(x);
    if (p && p.gap < need) {
      x = this.batch(x);
      p = undefined;
    }
    let flat: string;
    let gap: number;
    if (p) {
      gap = p.gap;
      // zero the gap columns a previous conv left behind
      const clean = p.dirty && gap > 0 ? b.node('Mul', [x, this.gapMask(w, gap)]) : x;
      flat = b.node('Reshape', [clean, b.ints('shape', [1, cin, h, -1])]);
    } else {
      gap = need;
      const padded = gap > 0 ? b.node('Pad', [x, b.ints('pads', [0, 0, 0, 0, 0, 0, 0, gap])]) : x;
      // [B, Cin, H, W+gap] -> [Cin, H, B, W+gap] -> [1, Cin, H, B*(W+gap)]
      const t = b.node('Transpose', [padded], { perm: { ints: [1, 2, 0, 3] } });
      flat = b.node('Reshape', [t, b.ints('shape', [1, cin, h, -1])]);
    }
    const y = b.node('Conv', [flat, weight], {
      kernel_shape: { ints: kernel },
      pads: { ints: [pads[0], pads[1], pads[2], pads[3]] },
      dilations: { ints: dil },
      group: { i: group },
    });
    const out = b.node('Reshape', [y, b.ints('shape', [cout, h, -1, w + gap])]);
    return this.keepPacked(out, { c: cout, h, w, gap, dirty: gap > 0 });
  }

  private keepPacked(v: string, p: Packed): string {
    this.packed.set(v, p);
    return v;
  }

  /** A gradient in the batch layout [B, C, H, W]: packed ones are cropped and transposed back (once). */
  private batch(v: string): string {
    const p = this.packed.get(v);
    if (!p) return v;
    const hit = this.unpacked.get(v);
    if (hit) return hit;
    const b = this.b;
    const cropped = p.gap > 0 ? b.node('Slice', [v, b.ints('s', [0]), b.ints('e', [p.w]), b.ints('a', [3])]) : v;
    const out = b.node('Transpose', [cropped], { perm: { ints: [2, 0, 1, 3] } });
    this.unpacked.set(v, out);
    return out;
  }

  /** A batch-1 mask [1, C, H, W] in the packed layout [C, H, 1, W+gap], zero on the gap columns. */
  private packedMask(m: string, p: Packed): string {
    const b = this.b;
    const padded = p.gap > 0 ? b.node('Pad', [m, b.ints('pads', [0, 0, 0, 0, 0, 0, 0, p.gap])]) : m;
    return b.node('Reshape', [padded, b.ints('shape', [p.c, p.h, 1, p.w + p.gap])]);
  }

  private gapMask(w: number, gap: number): string {
    const m = new Float32Array(w + gap);
    m.fill(1, 0, w);
    return this.b.floatInit('gap_mask', [w + gap], m);
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

  private flippedWeight(name: string, group: number): string {
    const w = this.em.weightOf(name);
    const [cout, cinG, kh, kw] = w.shape;
    const coutG = cout / group;
    const out = new Float32Array(w.data.length);
    // W'[gi*cinG + i, o, a, c] = W[gi*coutG + o, i, kh-1-a, kw-1-c]
    for (let gi = 0; gi < group; gi++)
      for (let i = 0; i < cinG; i++)
        for (let o = 0; o < coutG; o++)
          for (let a = 0; a < kh; a++)
            for (let c = 0; c < kw; c++) {
              const src = (((gi * coutG + o) * cinG + i) * kh + (kh - 1 - a)) * kw + (kw - 1 - c);
              const dst = (((gi * cinG + i) * coutG + o) * kh + a) * kw + c;
              out[dst] = w.data[src];
            }
    return this.b.floatInit(`flipped:${name}`, [group * cinG, coutG, kh, kw], out);
  }

  /** A max pool whose windows tile its input exactly (kernel = stride, no padding, no remainder). */
  private tilingPool(n: IrNode): boolean {
    const op = n.op;
    if (op.op !== 'max_pool') return false;
    const [, h, w] = this.shape(n.inputs[0]);
    const [, ho, wo] = this.shape(n.output);
    return (
      op.pads.every((p) => p === 0) &&
      op.kernel[0] === op.strides[0] &&
      op.kernel[1] === op.strides[1] &&
      ho * op.kernel[0] === h &&
      wo * op.kernel[1] === w
    );
  }

  /** One-hot [1, C, H, W] of each window's arg-max, from the forward pool's indices. */
  private argMaxOneHot(n: IrNode): string {
    const b = this.b;
    const [c, h, w] = this.shape(n.inputs[0]);
    const [, ho, wo] = this.shape(n.output);
    const idx = b.node('Reshape', [this.poolIndices.get(n.name) as string, b.ints('shape', [1, c * ho * wo])]);
    const zeros = b.floatInit('zeros', [1, c * h * w], new Float32Array(c * h * w));
    const ones = b.floatInit('ones', [1, c * ho * wo], new Float32Array(c * ho * wo).fill(1));
    const onehot = b.node('ScatterElements', [zeros, idx, ones], { axis: { i: 1 } });
    return b.node('Reshape', [onehot, b.ints('shape', [1, c, h, w])]);
  }

  /**
   * Whether a tiling pool's routing and the backward of the conv feeding it (through a ReLU) are done as one
   * strided ConvTranspose (poolConvBackward): for convs with few input channels (an RGB first layer), where
   * the full-resolution gradient between them is mostly memory traffic.
   */
  private poolConvFusable(pool: IrNode, conv: IrNode): boolean {
    const op = conv.op;
    if (this.convForm !== 'auto' || op.op !== 'conv' || op.group !== 1) return false;
    const [cin, h, w] = this.shape(conv.inputs[0]);
    const [, ho, wo] = this.shape(conv.output);
    const strideOne = op.strides.every((s) => s === 1) && op.dilations.every((d) => d === 1);
    const [pt, pl, pb, pr] = op.pads;
    const [kh, kw] = op.kernel;
    return cin < 8 && strideOne && h === ho && w === wo && pt + pb === kh - 1 && pl + pr === kw - 1 && pool.op.op === 'max_pool';
  }

  /**
   * Tiling pool (ReLU folded in) and the conv before it in one op. The pooled gradient is routed in the pooled
   * resolution onto C·ph·pw channels (one per window position), then a ConvTranspose with stride (ph, pw) and a
   * (ph+kh-1)×(pw+kw-1) kernel, W'[(c, dy, dx), i, dy+a, dx+b] = W[c, i, a, b], maps it to the conv's input:
   * the full-resolution gradient is never formed.
   */
  private poolConvBackward(pool: IrNode, gy: string, relu: IrNode, conv: IrNode): string {
    const b = this.b;
    const pop = pool.op;
    const cop = conv.op;
    if (pop.op !== 'max_pool' || cop.op !== 'conv') throw new Error('not a pool after a conv');
    const [c, , ] = this.shape(pool.inputs[0]);
    const [, ho, wo] = this.shape(pool.output);
    const [cin] = this.shape(conv.inputs[0]);
    const [ph, pw] = pop.kernel;
    const [kh, kw] = cop.kernel;
    const win = ph * pw;
    let mask = this.argMaxOneHot(pool);
    if (this.rule !== 'deconv') mask = b.node('Mul', [mask, this.positive(this.fwd.get(relu.inputs[0]) as string)]);
    // [1, C, H, W] -> [1, C, ph·pw, Ho, Wo]
    const m6 = b.node('Reshape', [mask, b.ints('shape', [1, c, ho, ph, wo, pw])]);
    const m5 = b.node('Reshape', [b.node('Transpose', [m6], { perm: { ints: [0, 1, 3, 5, 2, 4] } }), b.ints('shape', [1, c, win, ho, wo])]);
    const g = this.rule === 'gradient' ? gy : b.node('Relu', [gy]);
    const routed = b.node('Mul', [b.node('Reshape', [g, b.ints('shape', [-1, c, 1, ho, wo])]), m5]);
    const flat = b.node('Reshape', [routed, b.ints('shape', [-1, c * win, ho, wo])]);
    const w = this.em.weightOf(cop.weight);
    const kh2 = ph + kh - 1;
    const kw2 = pw + kw - 1;
    const w2 = new Float32Array(c * win * cin * kh2 * kw2);
    for (let o = 0; o < c; o++)
      for (let dy = 0; dy < ph; dy++)
        for (let dx = 0; dx < pw; dx++)
          for (let i = 0; i < cin; i++)
            for (let a = 0; a < kh; a++)
              for (let bb = 0; bb < kw; bb++) {
                const dst = ((((o * ph + dy) * pw + dx) * cin + i) * kh2 + dy + a) * kw2 + dx + bb;
                w2[dst] = w.data[((o * cin + i) * kh + a) * kw + bb];
              }
    const [pt, pl, pb, pr] = cop.pads;
    return b.node('ConvTranspose', [flat, b.floatInit(`poolconv:${cop.weight}`, [c * win, cin, kh2, kw2], w2)], {
      kernel_shape: { ints: [kh2, kw2] },
      strides: { ints: pop.strides },
      pads: { ints: [pt, pl, pb, pr] },
    });
  }

  /**
   * Tiling max pool: gradient = upsample(gy) * one-hot(arg-max). With `relu` (the ReLU feeding the
   * pool, folded in): the ReLU rule is applied to the small gy and its forward mask joins the one-hot.
   */
  private tilingPoolBackward(n: IrNode, gy: string, relu: IrNode | undefined): string {
    const b = this.b;
    const op = n.op;
    if (op.op !== 'max_pool') throw new Error('not a max pool');
    const [c, h, w] = this.shape(n.inputs[0]);
    let p = this.packed.get(gy);
    if (p && w > PACKED_MAX_WIDTH && this.convForm !== 'packed') {
      gy = this.batch(gy);
      p = undefined;
    }
    let mask = this.argMaxOneHot(n);
    let g = gy;
    if (relu) {
      if (this.rule !== 'gradient') g = b.node('Relu', [gy]);
      if (this.rule !== 'deconv') mask = b.node('Mul', [mask, this.positive(this.fwd.get(relu.inputs[0]) as string)]);
    }
    const [kh, kw] = op.kernel;
    if (p) {
      // packed [C, Ho, B, Wo+gap] -> upsampled [C, H, B, (Wo+gap)·kw] -> at most one gap column kept
      const flat = b.node('Reshape', [g, b.ints('shape', [1, c, p.h, -1])]);
      const ones = b.floatInit('ones', [c, 1, kh, kw], new Float32Array(c * kh * kw).fill(1));
      const up = b.node('ConvTranspose', [flat, ones], { kernel_shape: { ints: op.kernel }, strides: { ints: op.strides }, group: { i: c } });
      const wide = (p.w + p.gap) * kw;
      const gap = Math.min(p.gap * kw, 1);
      let grid = b.node('Reshape', [up, b.ints('shape', [c, h, -1, wide])]);
      if (w + gap < wide) grid = b.node('Slice', [grid, b.ints('s', [0]), b.ints('e', [w + gap]), b.ints('a', [3])]);
      const q: Packed = { c, h, w, gap, dirty: false };
      return this.keepPacked(b.node('Mul', [grid, this.packedMask(mask, q)]), q);
    }
    // nearest-neighbour upsampling by the window size (exact for tiling windows; cheaper than a grouped
    // ConvTranspose with a ones kernel on per-image maps)
    const up = b.node('Resize', [g, '', b.floats('scales', [1, 1, kh, kw])], {
      mode: { s: 'nearest' },
      coordinate_transformation_mode: { s: 'asymmetric' },
      nearest_mode: { s: 'floor' },
    });
    return b.node('Mul', [up, mask]);
  }

  /** Max pool in general (overlapping or padded windows): scatter-add onto the arg-max positions. */
  private maxPoolBackward(n: IrNode, gy: string, inShape: Shape, outShape: Shape): string {
    const b = this.b;
    const [c, h, w] = inShape;
    const [, ho, wo] = outShape;
    const flatIdx = b.node('Reshape', [this.poolIndices.get(n.name) as string, b.ints('shape', [1, c * ho * wo])]);
    const rows = b.node('Slice', [b.node('Shape', [gy]), b.ints('s', [0]), b.ints('e', [1])]);
    const zerosShape = b.node('Concat', [rows, b.ints('n', [c * h * w])], { axis: { i: 0 } });
    const zeros = b.node('ConstantOfShape', [zerosShape]);
    const idxShape = b.node('Concat', [rows, b.ints('n', [c * ho * wo])], { axis: { i: 0 } });
    const idxB = b.node('Expand', [flatIdx, idxShape]);
    const g2 = b.node('Reshape', [gy, b.ints('shape', [-1, c * ho * wo])]);
    const sc = b.node('ScatterElements', [zeros, idxB, g2], { axis: { i: 1 }, reduction: { s: 'add' } });
    return b.node('Reshape', [sc, b.ints('shape', [-1, c, h, w])]);
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
