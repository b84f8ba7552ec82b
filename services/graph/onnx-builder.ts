/**
 * Builds tensor graphs (./tensor-graph.ts) in memory: nodes in ONNX operator semantics, initializers,
 * inputs and outputs. Used by the forward exporter, the attribution builder, the op modules and tests.
 * `graph()` returns the tensor graph; `model()` / `encode()` give its ONNX form (./onnx-encode.ts).
 */
import type { ModelProto } from './generated/onnx/onnx';
import { TensorProto_DataType as DT } from './generated/onnx/onnx';
import { elemTypeOf, encodeOnnx, toModelProto } from './onnx-encode';
import type { Attrs, Dim, Initializer, TensorGraph, TensorNode, ValueInfo } from './tensor-graph';

export type { AttrValue, Attrs, Dim } from './tensor-graph';

export class OnnxBuilder {
  private readonly nodes: TensorNode[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
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

  /** A graph input; `elemType` is an ONNX TensorProto data type (float, int64 or bool). */
  input(name: string, dims: Dim[], elemType: number = DT.FLOAT): string {
    this.reserve(name);
    this.inputs.push({ name, elemType: elemTypeOf(elemType), dims });
    return name;
  }

  /** Declares an existing value as a graph output (`dims` undefined: shape left to inference). */
  output(name: string, dims?: Dim[], elemType: number = DT.FLOAT): void {
    this.outputs.push({ name, elemType: elemTypeOf(elemType), dims });
  }

  floatInit(prefix: string, dims: number[], data: Float32Array): string {
    const name = this.fresh(prefix);
    this.inits.push({ name, type: 'float', dims, data });
    return name;
  }

  /** A float initializer from numbers (scalars: dims []). */
  floats(prefix: string, values: number[], dims: number[] = [values.length]): string {
    return this.floatInit(prefix, dims, Float32Array.from(values));
  }

  ints(prefix: string, values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh(prefix);
    this.inits.push({ name, type: 'int64', dims, data: values.map((v) => Math.trunc(v)) });
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
      inputs,
      outputs: outs,
      name: nodeName ?? this.fresh(`n${this.nodes.length}_${opType}`),
      opType,
      attrs,
    });
    return outs;
  }

  /** Adds a one-output node; `out` names its output (fresh when omitted). */
  node(opType: string, inputs: string[], attrs: Attrs = {}, out?: string, nodeName?: string): string {
    return this.nodeN(opType, inputs, out === undefined ? 1 : [out], attrs, nodeName)[0];
  }

  /** The tensor graph built so far (nodes in the order they were added). */
  graph(opset = 13): TensorGraph {
    return {
      name: this.graphName,
      opset,
      nodes: [...this.nodes],
      initializers: [...this.inits],
      inputs: [...this.inputs],
      outputs: [...this.outputs],
    };
  }

  model(opset = 13): ModelProto {
    return toModelProto(this.graph(opset));
  }

  encode(opset = 13): Uint8Array {
    return encodeOnnx(this.graph(opset));
  }
}
