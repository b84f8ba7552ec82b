/**
 * The tensor graph: what the graph builders (forward export, attribution) produce and what every engine
 * executes. Nodes carry ONNX operator semantics (default domain, the graph's `opset`); values are named;
 * initializers are float32 or int64 constants. It knows nothing of protobuf: the onnxruntime engine encodes
 * it (./onnx-encode.ts), the tfjs engine interprets it (services/engines/tfjs/interpret.ts).
 *
 * Batch dimensions are explicit here (unlike the per-sample IR of ./ir.ts): a dim is a number or a name
 * for a dynamic one ('N', 'B').
 */

/** A dimension: a number, or a name for a dynamic one ('N'). */
export type Dim = number | string;

export type ElemType = 'float' | 'int64' | 'bool';

export type TensorData =
  | { type: 'float'; dims: number[]; data: Float32Array }
  | { type: 'int64'; dims: number[]; data: number[] };

export type AttrValue =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { floats: number[] }
  | { s: string }
  | { t: TensorData };

export type Attrs = Record<string, AttrValue>;

export interface TensorNode {
  name: string;
  opType: string;
  /** Value names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

export interface ValueInfo {
  name: string;
  elemType: ElemType;
  /** undefined: shape left to inference. */
  dims?: Dim[];
}

export type Initializer = TensorData & { name: string };

export interface TensorGraph {
  name: string;
  /** ONNX default-domain opset the nodes follow. */
  opset: number;
  /** In execution (topological) order. */
  nodes: TensorNode[];
  initializers: Initializer[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

/** How many nodes of each op type the graph has (tests check which forms a build produced). */
export function opCounts(g: TensorGraph): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of g.nodes) m.set(n.opType, (m.get(n.opType) ?? 0) + 1);
  return m;
}

/** Bytes held by the graph's initializers. */
export function initializerBytes(g: TensorGraph): number {
  return g.initializers.reduce((s, t) => s + (t.type === 'float' ? t.data.byteLength : t.data.length * 8), 0);
}

/** Attribute readers with defaults; a wrong kind is a programming error in a builder. */
export function attrInt(n: TensorNode, name: string, dflt: number): number {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (!('i' in a)) throw new Error(`${n.opType} ${n.name}: attribute ${name} is not an int`);
  return a.i;
}

export function attrFloat(n: TensorNode, name: string, dflt: number): number {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (!('f' in a)) throw new Error(`${n.opType} ${n.name}: attribute ${name} is not a float`);
  return a.f;
}

export function attrInts(n: TensorNode, name: string, dflt: number[] | undefined): number[] | undefined {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (!('ints' in a)) throw new Error(`${n.opType} ${n.name}: attribute ${name} is not a list of ints`);
  return a.ints;
}

export function attrString(n: TensorNode, name: string, dflt: string): string {
  const a = n.attrs[name];
  if (a === undefined) return dflt;
  if (!('s' in a)) throw new Error(`${n.opType} ${n.name}: attribute ${name} is not a string`);
  return a.s;
}
