/**
 * Emits the ONNX nodes (opset 13) that compute IR nodes, into an OnnxBuilder: each op's form is in its
 * module (./ops); a conv's CPU forms (conv-as-dense, conv-tiles) are chosen here. Tensors carry a leading
 * batch dimension; weights become initializers once each.
 */
import { convAsDense, convDenseMatrix, denseBias } from './conv-as-dense';
import { convAsTiles } from './conv-tiles';
import type { ConvOp, IrGraph, IrNode, WeightTensor } from './ir';
import type { OnnxBuilder } from './onnx-builder';
import { invalidArgument } from '../errors';
import { opDef } from './ops';
import type { EmitContext } from './ops/op';
import { ALL_PASSES, type PassSet } from './passes';

export const EXPORT_OPSET = 13;

export { poolAttrs } from './ops/pooling';

export class ForwardEmitter implements EmitContext {
  private readonly inits = new Map<string, string>();
  private readonly denseConvs = new Map<string, string>();
  private batchShape: string | undefined;

  /**
   * @param batchSource an ONNX value whose dimension 0 is the batch (for broadcasting constants).
   * @param passes device passes the forward may use (conv-as-dense, conv-tiles; ./passes).
   */
  constructor(
    readonly b: OnnxBuilder,
    readonly g: IrGraph,
    private readonly batchSource: string,
    private readonly passes: PassSet = ALL_PASSES,
  ) {}

  weightOf(name: string): WeightTensor {
    const w = this.g.weights.get(name);
    if (!w) throw invalidArgument(`the graph refers to a missing weight '${name}'`);
    return w;
  }

  /** An initializer for IR weight `name` with the given dims (default: its own shape). */
  init(name: string, dims?: number[]): string {
    const w = this.weightOf(name);
    const d = dims ?? w.shape;
    const key = `${name}|${d.join(',')}`;
    let v = this.inits.get(key);
    if (!v) {
      v = this.b.floatInit(`w:${name}`, d, w.data);
      this.inits.set(key, v);
    }
    return v;
  }

  /**
   * The [Cout·Ho·Wo, Cin·H·W] matrix of conv node `n` (./conv-as-dense.ts), one initializer per node
   * shared by the forward (x · Dᵀ) and the backward (gy · D).
   */
  denseConvInit(n: IrNode): string {
    const op = n.op;
    if (op.op !== 'conv') throw new Error(`node ${n.name} is not a conv`);
    let v = this.denseConvs.get(n.name);
    if (!v) {
      const inShape = this.g.shapes.get(n.inputs[0]) ?? [];
      const outShape = this.g.shapes.get(n.output) ?? [];
      const d = convDenseMatrix(op, this.weightOf(op.weight).data, inShape, outShape);
      v = this.b.floatInit(`dense:${op.weight}`, [outShape[0] * outShape[1] * outShape[2], inShape[0] * inShape[1] * inShape[2]], d);
      this.denseConvs.set(n.name, v);
    }
    return v;
  }

  /**
   * A same-padded conv with the batch laid side by side in one image ([1, C, H, N·(W+p)], p zero columns
   * after each sample; ./conv-tiles.ts): one GEMM pass over the weights for the whole batch.
   */
  private tiledConv(op: ConvOp, ins: string[], inShape: number[], outShape: number[], o: string): string {
    const b = this.b;
    const [c, h, w] = inShape;
    const [cout] = outShape;
    const p = op.pads[1];
    const gapped = b.node('Pad', [ins[0], b.ints('pads', [0, 0, 0, 0, 0, 0, 0, p])]);
    const strip = b.node('Reshape', [b.node('Transpose', [gapped], { perm: { ints: [1, 2, 0, 3] } }), b.ints('shape', [1, c, h, -1])]);
    const y = b.node('Conv', [strip, ...ins.slice(1)], {
      kernel_shape: { ints: op.kernel },
      pads: { ints: op.pads },
    });
    const perSample = b.node('Reshape', [y, b.ints('shape', [cout, h, -1, w + p])]);
    const cropped = b.node('Slice', [perSample, b.ints('starts', [0]), b.ints('ends', [w]), b.ints('axes', [3])]);
    return b.node('Transpose', [cropped], { perm: { ints: [2, 0, 1, 3] } }, o);
  }

  /** Per-channel weight as [C,1,1] (rank-3 values) or [C] (vectors), broadcasting over the batch. */
  channelInit(name: string, valueRank: number): string {
    const w = this.weightOf(name);
    return this.init(name, [w.data.length, ...new Array<number>(valueRank - 1).fill(1)]);
  }

  /** [1] with the batch size, computed from the batch source. */
  batchDim(): string {
    if (!this.batchShape) {
      const shape = this.b.node('Shape', [this.batchSource]);
      this.batchShape = this.b.node('Slice', [shape, this.b.ints('c0', [0]), this.b.ints('c1', [1])]);
    }
    return this.batchShape;
  }

  /** Per-sample shape of IR value `v`. */
  shape(v: string): number[] {
    return this.g.shapes.get(v) ?? [];
  }

  /** Emits node `n` reading the ONNX values `inputs`; returns the ONNX output. */
  emit(n: IrNode, inputs: string[], out?: string): string {
    const o = out ?? this.b.fresh(`v:${n.output}`);
    const op = n.op;
    if (op.op === 'conv') {
      const special = this.specialConv(n, op, inputs, o);
      if (special !== undefined) return special;
    }
    return opDef(op.op, `node ${n.name}`, 'the ONNX exporter').emitOnnx(op as never, this, n, inputs, o);
  }

  /** The CPU forms of a conv (passes conv-as-dense, conv-tiles) where on and applicable; undefined for the plain Conv. */
  private specialConv(n: IrNode, op: ConvOp, inputs: string[], o: string): string | undefined {
    const b = this.b;
    const x = inputs[0];
    const inShape = this.g.shapes.get(n.inputs[0]) ?? [];
    const outShape = this.g.shapes.get(n.output) ?? [];
    if (this.passes.has('conv-as-dense') && inShape.length === 3 && outShape.length === 3 && convAsDense(op, inShape, outShape)) {
      const flat = b.node('Reshape', [x, b.ints('shape', [-1, inShape[0] * inShape[1] * inShape[2]])]);
      const gemmIns = [flat, this.denseConvInit(n)];
      if (op.bias) gemmIns.push(b.floatInit(`dense_bias:${op.bias}`, [outShape[0] * outShape[1] * outShape[2]], denseBias(this.weightOf(op.bias).data, outShape)));
      const y = b.node('Gemm', gemmIns, { transB: { i: 1 } });
      return b.node('Reshape', [y, b.ints('shape', [-1, ...outShape])], {}, o);
    }
    if (this.passes.has('conv-tiles') && inShape.length === 3 && outShape.length === 3 && convAsTiles(op, inShape, this.weightOf(op.weight).data.length)) {
      const ins = [x, this.init(op.weight)];
      if (op.bias) ins.push(this.init(op.bias));
      return this.tiledConv(op, ins, inShape, outShape, o);
    }
    return undefined;
  }
}
