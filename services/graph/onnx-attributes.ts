/** Typed access to an ONNX node's attributes. */
import { AttributeProto, AttributeProto_AttributeType as AT, NodeProto } from './generated/onnx/onnx';
import { decodeTensor } from './onnx-codec';
import type { ConstTensor } from './onnx-const-eval';
import { invalidArgument } from '../errors';

export class NodeAttributes {
  private readonly byName = new Map<string, AttributeProto>();

  constructor(
    private readonly node: NodeProto,
    readonly nodeName: string,
  ) {
    for (const a of node.attribute) this.byName.set(a.name, a);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  int(name: string, dflt: number): number {
    const a = this.byName.get(name);
    return a ? Number(a.i) : dflt;
  }

  float(name: string, dflt: number): number {
    const a = this.byName.get(name);
    if (!a) return dflt;
    return a.type === AT.INT ? Number(a.i) : a.f;
  }

  ints(name: string): number[] | undefined {
    const a = this.byName.get(name);
    return a ? a.ints.map(Number) : undefined;
  }

  floats(name: string): number[] | undefined {
    return this.byName.get(name)?.floats;
  }

  string(name: string, dflt: string): string {
    const a = this.byName.get(name);
    return a ? a.s.toString('utf8') : dflt;
  }

  tensor(name: string): ConstTensor | undefined {
    const a = this.byName.get(name);
    if (!a?.t) return undefined;
    const d = decodeTensor(a.t, `attribute '${name}' of node '${this.nodeName}'`);
    return { dims: d.dims, float: d.data instanceof Float32Array, data: d.data };
  }

  /** The value of a Constant node (value, value_float(s), value_int(s)). */
  constantValue(): ConstTensor {
    const t = this.tensor('value');
    if (t) return t;
    const a = this.byName;
    if (a.has('value_float')) return { dims: [], float: true, data: Float32Array.of(this.float('value_float', 0)) };
    if (a.has('value_floats')) {
      const v = this.floats('value_floats') ?? [];
      return { dims: [v.length], float: true, data: Float32Array.from(v) };
    }
    if (a.has('value_int')) return { dims: [], float: false, data: Float64Array.of(this.int('value_int', 0)) };
    if (a.has('value_ints')) {
      const v = this.ints('value_ints') ?? [];
      return { dims: [v.length], float: false, data: Float64Array.from(v) };
    }
    throw invalidArgument(`Constant node '${this.nodeName}' has no value this service can read`);
  }

  get opType(): string {
    return this.node.opType;
  }
}
