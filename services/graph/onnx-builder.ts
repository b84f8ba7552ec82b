/**
 * Builds ONNX models in memory: nodes, initializers, inputs and outputs, encoded with the generated
 * codec. Used by the forward exporter, the attribution exporter and tests.
 */
import {
  AttributeProto,
  AttributeProto_AttributeType as AT,
  ModelProto,
  NodeProto,
  TensorProto,
  TensorProto_DataType as DT,
  ValueInfoProto,
} from './generated/onnx/onnx';
import { encodeModel, floatTensor, int64Tensor } from './onnx-codec';

export type AttrValue =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { t: TensorProto };

export type Attrs = Record<string, AttrValue>;

/** A dimension: a number, or a name for a dynamic one ('N'). */
export type Dim = number | string;

function attribute(name: string, v: AttrValue): AttributeProto {
  const a: AttributeProto = {
    name,
    f: 0,
    i: 0,
    s: Buffer.alloc(0),
    t: undefined,
    floats: [],
    ints: [],
    strings: [],
    type: AT.UNDEFINED,
  };
  if ('i' in v) Object.assign(a, { i: v.i, type: AT.INT });
  else if ('f' in v) Object.assign(a, { f: v.f, type: AT.FLOAT });
  else if ('ints' in v) Object.assign(a, { ints: v.ints, type: AT.INTS });
  else if ('floats' in v) Object.assign(a, { floats: v.floats, type: AT.FLOATS });
  else if ('s' in v) Object.assign(a, { s: Buffer.from(v.s), type: AT.STRING });
  else Object.assign(a, { t: v.t, type: AT.TENSOR });
  return a;
}

function valueInfo(name: string, elemType: number, dims: Dim[] | undefined): ValueInfoProto {
  const shape = dims ? { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined;
  return { name, type: { tensorType: { elemType, shape } } };
}

export class OnnxBuilder {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: TensorProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  constructor(private readonly graphName = 'graph') {}

  /** A value name not used yet, starting with `prefix`. */
  fresh(prefix: string): string {
    let name = prefix;
    while (this.used.has(name)) name = `${prefix}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Reserves an exact name (an input, output or a name chosen by the caller). */
  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX builder: value name '${name}' is used twice`);
    this.used.add(name);
    return name;
  }

  input(name: string, dims: Dim[], elemType: number = DT.FLOAT): string {
    this.reserve(name);
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** Declares an existing value as a graph output (`dims` undefined: shape left to inference). */
  output(name: string, dims?: Dim[], elemType: number = DT.FLOAT): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  floatInit(prefix: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(prefix);
    this.inits.push(floatTensor(name, dims, data));
    return name;
  }

  /** A float initializer from numbers (scalars: dims []). */
  floats(prefix: string, values: number[], dims: number[] = [values.length]): string {
    return this.floatInit(prefix, dims, Float32Array.from(values));
  }

  ints(prefix: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh(prefix);
    this.inits.push(int64Tensor(name, dims, values));
    return name;
  }

  /** Adds a node with `outputs` output values (fresh names from its op type); returns their names. */
  nodeN(opType: string, inputs: string[], outputs: number | string[], attrs: Attrs = {}, nodeName?: string): string[] {
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(`${opType.toLowerCase()}`))
        : outputs;
    for (const o of outs) this.used.add(o);
    this.nodes.push({
      input: inputs,
      output: outs,
      name: nodeName ?? this.fresh(`n${this.nodes.length}_${opType}`),
      opType,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      domain: '',
    });
    return outs;
  }

  /** Adds a one-output node; `out` names its output (fresh when omitted). */
  node(opType: string, inputs: string[], attrs: Attrs = {}, out?: string, nodeName?: string): string {
    return this.nodeN(opType, inputs, out === undefined ? 1 : [out], attrs, nodeName)[0];
  }

  model(opset = 13): ModelProto {
    return {
      irVersion: 8,
      producerName: 'cnn-introspect',
      producerVersion: '1',
      graph: {
        node: this.nodes,
        name: this.graphName,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
        valueInfo: [],
      },
      opsetImport: [{ domain: '', version: opset }],
    };
  }

  encode(opset = 13): Uint8Array {
    return encodeModel(this.model(opset));
  }
}
