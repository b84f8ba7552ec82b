/** A tensor graph (./tensor-graph.ts) as an ONNX ModelProto / protobuf bytes, for onnxruntime. */
import {
  AttributeProto,
  AttributeProto_AttributeType as AT,
  ModelProto,
  TensorProto,
  TensorProto_DataType as DT,
  ValueInfoProto,
} from './generated/onnx/onnx';
import { encodeModel, floatTensor, int64Tensor } from './onnx-codec';
import type { AttrValue, ElemType, TensorData, TensorGraph, ValueInfo } from './tensor-graph';

const ELEM: Record<ElemType, number> = { float: DT.FLOAT, int64: DT.INT64, bool: DT.BOOL };

/** The ONNX element type of a tensor-graph element type, and back. */
export function onnxElemType(t: ElemType): number {
  return ELEM[t];
}

export function elemTypeOf(onnxType: number): ElemType {
  const hit = (Object.keys(ELEM) as ElemType[]).find((k) => ELEM[k] === onnxType);
  if (!hit) throw new Error(`tensor graphs hold float, int64 or bool values, not ONNX type ${onnxType}`);
  return hit;
}

function tensor(name: string, t: TensorData): TensorProto {
  return t.type === 'float' ? floatTensor(name, t.dims, t.data) : int64Tensor(name, t.dims, t.data);
}

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
  else Object.assign(a, { t: tensor('', v.t), type: AT.TENSOR });
  return a;
}

function valueInfo(v: ValueInfo): ValueInfoProto {
  const shape = v.dims ? { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined;
  return { name: v.name, type: { tensorType: { elemType: ELEM[v.elemType], shape } } };
}

export function toModelProto(g: TensorGraph): ModelProto {
  return {
    irVersion: 8,
    producerName: 'cnn-introspect',
    producerVersion: '1',
    graph: {
      node: g.nodes.map((n) => ({
        input: n.inputs,
        output: n.outputs,
        name: n.name,
        opType: n.opType,
        attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
        domain: '',
      })),
      name: g.name,
      initializer: g.initializers.map((t) => tensor(t.name, t)),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      valueInfo: [],
    },
    opsetImport: [{ domain: '', version: g.opset }],
  };
}

/** ONNX protobuf bytes of the graph (what onnxruntime's InferenceSession.create takes). */
export function encodeOnnx(g: TensorGraph): Uint8Array {
  return encodeModel(toModelProto(g));
}
