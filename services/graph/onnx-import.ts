/**
 * ONNX model bytes -> graph IR (services/graph/ir.ts).
 *
 * - Shapes are inferred statically per sample (the batch dimension removed); the only dynamic quantity
 *   is the batch size, which shape arithmetic may carry symbolically (see onnx-const-eval).
 * - Every node whose inputs are all known is folded at import (weights, shape arithmetic).
 * - A batch-norm, or a per-channel Mul/Add/Sub/Div by constants, directly after a conv whose output has
 *   no other consumer is folded into the conv (BatchNormalization marks it `batchNormFolded`); after a
 *   dense it folds into the dense; elsewhere it becomes `affine` (consecutive affines merge).
 * - Identity, Dropout, float Casts and no-op Pad/Slice/Reshape vanish; a trailing Softmax/LogSoftmax is
 *   removed so the output is the logits.
 * Errors: unreadable bytes -> invalidArgument; an op or a use of one that has no IR form -> unimplemented
 * naming the op type and node.
 */
import type { IrGraph, IrNode, IrOp, Shape, WeightTensor } from './ir';
import type { GraphProto, NodeProto } from './generated/onnx/onnx';
import { TensorProto_DataType as DT } from './generated/onnx/onnx';
import { decodeModel, decodeTensor } from './onnx-codec';
import { NodeAttributes } from './onnx-attributes';
import {
  BATCH,
  ConstTensor,
  canFold,
  evalConst,
  expand,
  hasSym,
} from './onnx-const-eval';
import { inferShape } from './ir-shapes';
import { weightRefs } from './ir-util';
import { onnxReader } from './ops';
import type { OnnxReadContext } from './ops/op';
import { invalidArgument, unimplemented } from '../errors';

const MIN_OPSET = 9;

export function importOnnx(bytes: Uint8Array): IrGraph {
  const model = decodeModel(bytes);
  const opsetEntry = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  const opset = opsetEntry ? Number(opsetEntry.version) : 0;
  if (opset < MIN_OPSET) {
    throw unimplemented(`ONNX opset ${opset || '(none declared)'} is not supported: export with opset ${MIN_OPSET}..21`);
  }
  return new OnnxImporter(model.graph as GraphProto, opset).run();
}

const ACTIVATION_OR_ALIAS = new Set(['Identity', 'Dropout']);

class OnnxImporter {
  private readonly consts = new Map<string, ConstTensor>();
  /** ONNX value -> IR value, for values that depend on the input. */
  private readonly data = new Map<string, string>();
  private readonly nodes: IrNode[] = [];
  private readonly shapes = new Map<string, Shape>();
  private readonly weights = new Map<string, WeightTensor>();
  private readonly producer = new Map<string, IrNode>();
  /** Remaining uses of an IR value (ONNX consumers of every ONNX name that maps to it). */
  private readonly uses = new Map<string, number>();
  private readonly onnxUses = new Map<string, number>();
  private readonly usedNames = new Set<string>();
  private inputName = '';

  constructor(
    private readonly graph: GraphProto,
    private readonly opset: number,
  ) {}

  run(): IrGraph {
    const g = this.graph;
    const initNames = new Set(g.initializer.map((t) => t.name));
    for (const t of g.initializer) {
      const d = decodeTensor(t, 'initializer');
      this.consts.set(t.name, { dims: d.dims, float: d.data instanceof Float32Array, data: d.data });
    }
    const inputs = g.input.filter((v) => !initNames.has(v.name));
    if (inputs.length !== 1) {
      throw invalidArgument(`the model must have exactly one input, it has ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`);
    }
    const input = inputs[0];
    const tt = input.type?.tensorType;
    const dims = tt?.shape?.dim ?? [];
    if (tt && tt.elemType !== DT.FLOAT && tt.elemType !== 0) {
      throw invalidArgument(`input '${input.name}' must be float32 (it has element type ${tt.elemType})`);
    }
    const perSample = dims.slice(1).map((d) => (d.dimValue !== undefined ? Number(d.dimValue) : -1));
    if (dims.length !== 4 || perSample.some((d) => d <= 0)) {
      const shown = dims.map((d) => (d.dimValue !== undefined ? String(d.dimValue) : d.dimParam || '?'));
      throw invalidArgument(`input '${input.name}' must be [N, C, H, W] with static C, H, W; it is [${shown.join(', ')}]`);
    }
    if (g.output.length === 0) throw invalidArgument('the model declares no output');

    this.inputName = input.name;
    this.usedNames.add(input.name);
    this.shapes.set(input.name, perSample);

    const onnxNodes = g.node;
    const producerOf = new Map<string, NodeProto>();
    for (const n of onnxNodes) for (const o of n.output) if (o) producerOf.set(o, n);
    let out = g.output[0].name;
    // A trailing softmax goes: the IR output is the logits.
    for (let hops = 0; hops < 4; hops++) {
      const p = producerOf.get(out);
      if (!p) break;
      if (p.opType === 'Softmax' || p.opType === 'LogSoftmax') {
        out = p.input[0];
        break;
      }
      if (!ACTIVATION_OR_ALIAS.has(p.opType)) break;
      out = p.input[0];
    }

    const needed = this.neededNodes(producerOf, out);
    for (const n of onnxNodes) {
      if (!needed.has(n)) continue;
      for (const i of n.input) if (i) this.onnxUses.set(i, (this.onnxUses.get(i) ?? 0) + 1);
    }
    this.onnxUses.set(out, (this.onnxUses.get(out) ?? 0) + 1);
    this.setData(input.name, input.name);

    onnxNodes.forEach((n, i) => {
      if (needed.has(n)) this.convert(n, i);
    });

    const outIr = this.data.get(out);
    if (outIr === undefined) {
      throw invalidArgument(`the model output '${out}' does not depend on the input '${input.name}'`);
    }
    return this.finish(outIr);
  }

  private neededNodes(producerOf: Map<string, NodeProto>, out: string): Set<NodeProto> {
    const needed = new Set<NodeProto>();
    const stack = [out];
    const seen = new Set<string>();
    while (stack.length) {
      const v = stack.pop() as string;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = producerOf.get(v);
      if (!p || needed.has(p)) continue;
      needed.add(p);
      for (const i of p.input) if (i) stack.push(i);
    }
    return needed;
  }

  /** Drops IR nodes the output does not need and packs the graph. */
  private finish(outIr: string): IrGraph {
    const live = new Set<string>([outIr]);
    const kept: IrNode[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (!live.has(n.output)) continue;
      kept.push(n);
      for (const v of n.inputs) live.add(v);
    }
    kept.reverse();
    const weights = new Map<string, WeightTensor>();
    const shapes = new Map<string, Shape>([[this.inputName, this.shapes.get(this.inputName) as Shape]]);
    for (const n of kept) {
      for (const w of weightRefs(n.op)) weights.set(w, this.weights.get(w) as WeightTensor);
      shapes.set(n.output, this.shapes.get(n.output) as Shape);
    }
    return {
      input: { name: this.inputName, shape: this.shapes.get(this.inputName) as Shape },
      output: outIr,
      nodes: kept,
      weights,
      shapes,
    };
  }

  // ---- bookkeeping ----

  private setData(onnxName: string, irValue: string): void {
    this.data.set(onnxName, irValue);
    this.uses.set(irValue, (this.uses.get(irValue) ?? 0) + (this.onnxUses.get(onnxName) ?? 0));
  }

  private uniqueName(base: string): string {
    let name = base;
    for (let k = 1; this.usedNames.has(name); k++) name = `${base}_${k}`;
    this.usedNames.add(name);
    return name;
  }

  private addWeight(base: string, shape: number[], data: Float32Array): string {
    const name = this.uniqueName(base);
    this.weights.set(name, { shape, data });
    return name;
  }

  /** Appends an IR node; returns its output value. */
  private emit(name: string, op: IrOp, inputs: string[], outBase: string): string {
    const output = this.uniqueName(outBase);
    const node: IrNode = { name: this.uniqueName(name), inputs, output, op };
    const inShapes = inputs.map((v) => this.shapes.get(v) as Shape);
    this.shapes.set(output, inferShape(op, inShapes, this.weights, `node '${node.name}'`));
    this.nodes.push(node);
    this.producer.set(output, node);
    return output;
  }

  /** The producing IR node of `v` when this consumer is its only use (so it may be rewritten). */
  private soleProducer(v: string): IrNode | undefined {
    if (v === this.inputName || (this.uses.get(v) ?? 0) !== 1) return undefined;
    if (this.nodes.some((n) => n.inputs.includes(v))) return undefined;
    return this.producer.get(v);
  }

  // ---- conversion ----

  private convert(n: NodeProto, index: number): void {
    const name = n.name || `${n.opType}_${index}`;
    const attrs = new NodeAttributes(n, name);
    if (n.domain && n.domain !== 'ai.onnx') {
      throw unimplemented(`unsupported op ${n.domain}.${n.opType} (node '${name}')`);
    }
    for (const i of n.input) {
      if (i && !this.consts.has(i) && !this.data.has(i)) {
        throw invalidArgument(`node '${name}' (${n.opType}) reads '${i}', which no earlier node produces (the graph is not in topological order or is incomplete)`);
      }
    }
    if (n.opType === 'Constant') {
      this.consts.set(n.output[0], attrs.constantValue());
      return;
    }
    const present = n.input.filter((i) => i !== '');
    const allConst = present.every((i) => this.consts.has(i));
    if (allConst && canFold(n.opType)) {
      const ins = n.input.map((i) => (i ? this.consts.get(i) : undefined));
      this.consts.set(n.output[0], evalConst(n.opType, ins, this.foldContext(attrs)));
      return;
    }
    if (allConst) throw unimplemented(`op ${n.opType} (node '${name}') on constant inputs cannot be folded`);
    new NodeConverter(this, n, name, attrs).convert();
  }

  foldContext(attrs: NodeAttributes) {
    return {
      opset: this.opset,
      name: attrs.nodeName,
      attrInt: (k: string, d: number) => attrs.int(k, d),
      attrInts: (k: string) => attrs.ints(k),
      attrTensor: (k: string) => attrs.tensor(k),
    };
  }

  // Accessors for NodeConverter (kept small and explicit).
  get opsetVersion(): number {
    return this.opset;
  }
  constOf(v: string): ConstTensor | undefined {
    return v ? this.consts.get(v) : undefined;
  }
  setConst(v: string, t: ConstTensor): void {
    this.consts.set(v, t);
  }
  dataOf(v: string): string | undefined {
    return this.data.get(v);
  }
  shapeOf(irValue: string): Shape {
    return this.shapes.get(irValue) as Shape;
  }
  weight(name: string): WeightTensor {
    return this.weights.get(name) as WeightTensor;
  }
  bind(onnxName: string, irValue: string): void {
    this.setData(onnxName, irValue);
  }
  /** An alias node (Identity...) consumed one use of `irValue` and forwards it under a new name. */
  forward(onnxIn: string, onnxOut: string): void {
    const v = this.data.get(onnxIn) as string;
    this.uses.set(v, (this.uses.get(v) ?? 0) - 1);
    this.setData(onnxOut, v);
  }
  node(name: string, op: IrOp, inputs: string[], outBase: string): string {
    return this.emit(name, op, inputs, outBase);
  }
  newWeight(base: string, shape: number[], data: Float32Array): string {
    return this.addWeight(base, shape, data);
  }
  sole(v: string): IrNode | undefined {
    return this.soleProducer(v);
  }
  isUsed(onnxName: string): boolean {
    return onnxName !== '' && (this.onnxUses.get(onnxName) ?? 0) > 0;
  }
  /** A consumer that reads only the shape of `onnxIn` (Shape) gives up its use of the value. */
  release(onnxIn: string): void {
    const v = this.data.get(onnxIn) as string;
    this.uses.set(v, (this.uses.get(v) ?? 0) - 1);
  }
}

const toF32 = (t: ConstTensor): Float32Array => (t.data instanceof Float32Array ? t.data : Float32Array.from(t.data));

/** Converts one ONNX node that reads input-dependent data. */
class NodeConverter implements OnnxReadContext {
  readonly opType: string;

  constructor(
    private readonly im: OnnxImporter,
    private readonly n: NodeProto,
    readonly name: string,
    readonly attrs: NodeAttributes,
  ) {
    this.opType = n.opType;
  }

  fail(why: string): never {
    throw unimplemented(`${this.opType} node '${this.name}': ${why}`);
  }

  dataIn(i: number): string {
    const v = this.im.dataOf(this.n.input[i] ?? '');
    if (v === undefined) this.fail(`input ${i} must depend on the model input (it is a constant or missing)`);
    return v;
  }

  constIn(i: number, what: string): ConstTensor | undefined {
    const name = this.n.input[i] ?? '';
    if (!name) return undefined;
    const t = this.im.constOf(name);
    if (!t) this.fail(`${what} must be a constant`);
    return t;
  }

  private get out(): string {
    return this.n.output[0];
  }

  emit(op: IrOp, inputs: string[], suffix = ''): string {
    return this.im.node(this.name + suffix, op, inputs, this.out + suffix);
  }

  bindOut(v: string): void {
    this.im.bind(this.out, v);
  }

  convert(): void {
    const op = this.opType;
    for (let k = 1; k < this.n.output.length; k++) {
      if (this.im.isUsed(this.n.output[k])) this.fail(`output ${k} ('${this.n.output[k]}') is used, and it has no IR form`);
    }
    switch (op) {
      case 'Identity':
      case 'Dropout':
        return this.alias();
      case 'Cast': {
        const to = this.attrs.int('to', DT.FLOAT);
        if (to !== DT.FLOAT && to !== DT.DOUBLE && to !== DT.FLOAT16) this.fail(`cast of image data to type ${to}`);
        return this.alias();
      }
      case 'BatchNormalization':
        return this.batchNorm();
      case 'Add':
      case 'Sub':
      case 'Mul':
      case 'Div':
        return this.arithmetic();
      case 'Shape':
        return this.shape();
      case 'Softmax':
      case 'LogSoftmax':
        return this.fail('softmax is only supported as the last op (it is removed so the output is the logits)');
    }
    const read = onnxReader(op);
    if (!read) this.fail('unsupported op');
    read(this);
  }

  // ---- OnnxReadContext (what op modules' readers see) ----

  get opset(): number {
    return this.im.opsetVersion;
  }
  get inputCount(): number {
    return this.n.input.length;
  }
  inputName(i: number): string {
    return this.n.input[i] ?? '';
  }
  dataOf(i: number): string | undefined {
    return this.im.dataOf(this.n.input[i] ?? '');
  }
  shapeOf(v: string): Shape {
    return this.im.shapeOf(v);
  }
  newWeight(base: string, shape: number[], data: Float32Array): string {
    return this.im.newWeight(base, shape, data);
  }
  weight(name: string): WeightTensor {
    return this.im.weight(name);
  }
  alias(): void {
    this.im.forward(this.n.input[0], this.out);
  }
  constantValue(c: ConstTensor, dims: number[], suffix: string): string {
    const w = this.im.newWeight(`${this.name}${suffix}`, dims, toF32(c));
    return this.emit({ op: 'constant', value: w }, [], suffix);
  }

  // ---- convolution and normalisation ----

  private batchNorm(): void {
    const x = this.dataIn(0);
    const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => this.constIn(i, 'batch-norm parameters'));
    if (!scale || !bias || !mean || !variance) this.fail('needs scale, bias, mean and variance');
    if (this.attrs.int('training_mode', 0) === 1) this.fail('training_mode=1');
    const eps = this.attrs.float('epsilon', 1e-5);
    const c = this.im.shapeOf(x)[0];
    if ([scale, bias, mean, variance].some((t) => t.data.length !== c)) this.fail(`parameters do not have ${c} channels`);
    const s = new Float64Array(c);
    const t = new Float64Array(c);
    for (let k = 0; k < c; k++) {
      s[k] = scale.data[k] / Math.sqrt(variance.data[k] + eps);
      t[k] = bias.data[k] - mean.data[k] * s[k];
    }
    this.bindOut(this.affine(x, s, t, true));
  }

  /**
   * y = x * s[c] + t[c]: folded into a sole-use producing conv (or dense), merged into a sole-use
   * producing affine, or a new affine node.
   */
  private affine(x: string, s: Float64Array, t: Float64Array, isBatchNorm: boolean): string {
    const p = this.im.sole(x);
    if (p && (p.op.op === 'conv' || p.op.op === 'dense')) {
      const w = this.im.weight(p.op.weight);
      const outC = w.shape[0];
      const per = w.data.length / outC;
      const nw = new Float32Array(w.data.length);
      for (let o = 0; o < outC; o++) for (let k = 0; k < per; k++) nw[o * per + k] = w.data[o * per + k] * s[o];
      const oldBias = p.op.bias ? this.im.weight(p.op.bias).data : new Float32Array(outC);
      const nb = Float32Array.from({ length: outC }, (_, o) => oldBias[o] * s[o] + t[o]);
      p.op.weight = this.im.newWeight(`${p.name}.weight`, w.shape, nw);
      p.op.bias = this.im.newWeight(`${p.name}.bias`, [outC], nb);
      if (p.op.op === 'conv' && isBatchNorm) p.op.batchNormFolded = true;
      return x;
    }
    if (p && p.op.op === 'affine') {
      const s0 = this.im.weight(p.op.scale).data;
      const t0 = this.im.weight(p.op.shift).data;
      p.op.scale = this.im.newWeight(`${p.name}.scale`, [s.length], Float32Array.from(s, (v, k) => v * s0[k]));
      p.op.shift = this.im.newWeight(`${p.name}.shift`, [s.length], Float32Array.from(t, (v, k) => t0[k] * s[k] + v));
      return x;
    }
    const scale = this.im.newWeight(`${this.name}.scale`, [s.length], Float32Array.from(s));
    const shift = this.im.newWeight(`${this.name}.shift`, [t.length], Float32Array.from(t));
    return this.emit({ op: 'affine', scale, shift }, [x]);
  }

  // ---- elementwise ----

  /** Per-sample view of a constant that broadcasts against a value of per-sample shape `xs`. */
  private perSampleConst(c: ConstTensor, xs: Shape): { dims: number[]; perChannel: Float64Array | undefined } {
    const r = xs.length;
    let dims = [...c.dims];
    if (dims.length === r + 1) {
      if (dims[0] !== 1) this.fail(`constant [${c.dims}] has a batch dimension of ${dims[0]}`);
      dims = dims.slice(1);
    }
    if (dims.length > r) this.fail(`constant [${c.dims}] has more dimensions than the data [N,${xs}]`);
    dims = [...new Array<number>(r - dims.length).fill(1), ...dims];
    if (dims.some((d, i) => d !== 1 && d !== xs[i])) this.fail(`constant [${c.dims}] does not broadcast to [N,${xs}]`);
    const channels = xs[0];
    let perChannel: Float64Array | undefined;
    if (dims.every((d) => d === 1)) perChannel = new Float64Array(channels).fill(c.data[0]);
    else if (dims[0] === channels && dims.slice(1).every((d) => d === 1)) perChannel = Float64Array.from(c.data);
    return { dims, perChannel };
  }

  /** A full-shaped constant node for `c` broadcast to `xs`. */
  private constantNode(c: ConstTensor, xs: Shape, dims: number[], suffix: string): string {
    const full = expand({ ...c, dims }, xs);
    const w = this.im.newWeight(`${this.name}${suffix}.value`, [...xs], toF32(full));
    return this.emit({ op: 'constant', value: w }, [], suffix);
  }

  private arithmetic(): void {
    const op = this.opType;
    const [a, b] = [0, 1].map((i) => this.im.dataOf(this.n.input[i]));
    if (a !== undefined && b !== undefined) return this.bindOut(this.binaryData(op, a, b));
    const xIsFirst = a !== undefined;
    const x = (a ?? b) as string;
    const c = this.constIn(xIsFirst ? 1 : 0, 'the other operand') as ConstTensor;
    if (hasSym(c)) this.fail('operand depends on the batch size');
    const xs = this.im.shapeOf(x);
    const { dims, perChannel } = this.perSampleConst(c, xs);
    const ones = new Float64Array(xs[0]).fill(1);
    const zeros = new Float64Array(xs[0]);
    const negate = (t: ConstTensor): ConstTensor => ({ ...t, data: Float32Array.from(t.data, (v) => -v) });
    if (op === 'Add' || (op === 'Sub' && xIsFirst)) {
      const cc = op === 'Sub' ? negate(c) : c;
      if (perChannel) return this.bindOut(this.affine(x, ones, op === 'Sub' ? perChannel.map((v) => -v) : perChannel, false));
      return this.bindOut(this.emit({ op: 'add' }, [x, this.constantNode(cc, xs, dims, '/const')]));
    }
    if (op === 'Sub') {
      // c - x
      if (perChannel) return this.bindOut(this.affine(x, ones.map(() => -1), perChannel, false));
      const neg = this.affine(x, ones.map(() => -1), zeros, false);
      return this.bindOut(this.emit({ op: 'add' }, [neg, this.constantNode(c, xs, dims, '/const')], '/add'));
    }
    if (op === 'Div' && !xIsFirst) this.fail('division by the image data');
    const cc = op === 'Div' ? { ...c, data: Float32Array.from(c.data, (v) => 1 / v) } : c;
    if (perChannel) {
      const s = op === 'Div' ? perChannel.map((v) => 1 / v) : perChannel;
      return this.bindOut(this.affine(x, s, zeros, false));
    }
    this.bindOut(this.emit({ op: 'mul' }, [x, this.constantNode(cc, xs, dims, '/const')]));
  }

  private binaryData(op: string, a: string, b: string): string {
    if (op === 'Div') this.fail('division of two input-dependent values');
    let [x, y] = [a, b];
    if (op === 'Sub') {
      const c = this.im.shapeOf(y)[0];
      y = this.im.node(`${this.name}/neg`, { op: 'affine', scale: this.im.newWeight(`${this.name}/neg.scale`, [c], new Float32Array(c).fill(-1)), shift: this.im.newWeight(`${this.name}/neg.shift`, [c], new Float32Array(c)) }, [y], `${this.out}/neg`);
    }
    const xs = this.im.shapeOf(x);
    const ys = this.im.shapeOf(y);
    const same = (p: Shape, q: Shape) => p.length === q.length && p.every((d, i) => d === q[i]);
    const channelLike = (p: Shape, q: Shape) =>
      p.length === q.length && (q[0] === p[0] || q[0] === 1) && q.slice(1).every((d) => d === 1);
    if (!same(xs, ys)) {
      if (channelLike(ys, xs) && !channelLike(xs, ys)) [x, y] = [y, x];
      else if (!channelLike(xs, ys)) this.fail(`operands [${xs}] and [${ys}] differ (only equal shapes or a [C,1,1] second operand are supported)`);
    }
    return this.emit({ op: op === 'Mul' ? 'mul' : 'add' }, [x, y]);
  }

  private shape(): void {
    const x = this.dataIn(0);
    const full = [-1, ...this.im.shapeOf(x)];
    this.im.release(this.n.input[0]);
    const sym = new Uint8Array(full.length);
    sym[0] = BATCH;
    const r = full.length;
    let start = this.attrs.int('start', 0);
    let end = this.attrs.int('end', r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = Math.max(0, Math.min(r, start));
    end = Math.max(start, Math.min(r, end));
    this.im.setConst(this.out, {
      dims: [end - start],
      float: false,
      data: Float64Array.from(full.slice(start, end)),
      sym: sym.slice(start, end),
    });
  }
}
