/**
 * Reading and writing ONNX protobuf bytes and tensors with the generated codec
 * (services/graph/generated/onnx). int64 values beyond ±2^53 (exporters write INT64_MAX / INT64_MIN as
 * "to the end" markers for Slice) are clamped to ±(2^53 - 1) while decoding instead of failing: every
 * place that reads them clamps to a dimension anyway.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { ModelProto, TensorProto, TensorProto_DataType as DT } from './generated/onnx/onnx';
import { invalidArgument } from '../errors';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

class ClampingReader extends BinaryReader {
  override int64(): bigint | string {
    const v = BigInt(super.int64());
    if (v > MAX_SAFE) return MAX_SAFE;
    if (v < MIN_SAFE) return MIN_SAFE;
    return v;
  }
}

/** Decodes ONNX model bytes; anything that is not a protobuf ModelProto with a graph is invalidArgument. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw invalidArgument('the ONNX model is empty');
  let model: ModelProto;
  try {
    model = ModelProto.decode(new ClampingReader(bytes));
  } catch (e) {
    throw invalidArgument(`not a valid ONNX model (protobuf decoding failed: ${(e as Error).message})`);
  }
  if (!model.graph || model.graph.node.length === 0) {
    throw invalidArgument('not a valid ONNX model: it has no graph or the graph has no nodes');
  }
  if (model.irVersion <= 0 || model.irVersion > 100) {
    throw invalidArgument(`not a valid ONNX model: ir_version ${model.irVersion}`);
  }
  return model;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return ModelProto.encode(model).finish();
}

/** A decoded tensor: float types as Float32Array, integer and bool types as Float64Array. */
export interface DecodedTensor {
  dims: number[];
  /** The ONNX data type (TensorProto.DataType). */
  dataType: number;
  data: Float32Array | Float64Array;
}

export const isFloatType = (t: number): boolean => t === DT.FLOAT || t === DT.DOUBLE || t === DT.FLOAT16;

function copyBytes(buf: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(buf.byteLength);
  new Uint8Array(out).set(buf);
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function clampBig(v: bigint): number {
  if (v > MAX_SAFE) return Number.MAX_SAFE_INTEGER;
  if (v < MIN_SAFE) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

/** Decodes a TensorProto's contents. `what` names it in errors. */
export function decodeTensor(t: TensorProto, what: string): DecodedTensor {
  if (t.dataLocation === 1) {
    throw invalidArgument(`tensor '${t.name || what}' stores its data in an external file; embed the weights in the .onnx file`);
  }
  const dims = t.dims.map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw invalidArgument(`tensor '${t.name || what}' has invalid dims [${dims}]`);
  const count = dims.reduce((a, b) => a * b, 1);
  const raw = t.rawData.length > 0 ? t.rawData : undefined;
  const fail = (): never => {
    throw invalidArgument(`tensor '${t.name || what}': data holds the wrong number of elements for dims [${dims}]`);
  };
  let data: Float32Array | Float64Array;
  switch (t.dataType) {
    case DT.FLOAT:
      if (raw) {
        if (raw.byteLength !== count * 4) fail();
        data = new Float32Array(copyBytes(raw));
      } else data = Float32Array.from(t.floatData);
      break;
    case DT.DOUBLE:
      if (raw) {
        if (raw.byteLength !== count * 8) fail();
        data = Float32Array.from(new Float64Array(copyBytes(raw)));
      } else data = Float32Array.from(t.doubleData);
      break;
    case DT.FLOAT16:
      if (raw) {
        if (raw.byteLength !== count * 2) fail();
        data = Float32Array.from(new Uint16Array(copyBytes(raw)), halfToFloat);
      } else data = Float32Array.from(t.int32Data, halfToFloat);
      break;
    case DT.INT64:
      if (raw) {
        if (raw.byteLength !== count * 8) fail();
        data = Float64Array.from(new BigInt64Array(copyBytes(raw)), clampBig);
      } else data = Float64Array.from(t.int64Data);
      break;
    case DT.INT32:
    case DT.INT16:
    case DT.INT8:
    case DT.UINT16:
    case DT.UINT8:
    case DT.BOOL: {
      if (raw) {
        const buf = copyBytes(raw);
        const view =
          t.dataType === DT.INT32
            ? new Int32Array(buf)
            : t.dataType === DT.INT16
              ? new Int16Array(buf)
              : t.dataType === DT.UINT16
                ? new Uint16Array(buf)
                : t.dataType === DT.INT8
                  ? new Int8Array(buf)
                  : new Uint8Array(buf);
        data = Float64Array.from(view);
      } else data = Float64Array.from(t.int32Data);
      break;
    }
    default:
      throw invalidArgument(`tensor '${t.name || what}' has data type ${t.dataType}, which this service cannot read`);
  }
  if (data.length !== count) fail();
  return { dims, dataType: t.dataType === DT.DOUBLE || t.dataType === DT.FLOAT16 ? DT.FLOAT : t.dataType, data };
}

/** A float32 TensorProto (raw little-endian data; no copy of `data`). */
export function floatTensor(name: string, dims: number[], data: Float32Array): TensorProto {
  return {
    name,
    dims,
    dataType: DT.FLOAT,
    rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
    floatData: [],
    int32Data: [],
    int64Data: [],
    doubleData: [],
    dataLocation: 0,
  };
}

/** An int64 TensorProto. */
export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  const big = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) big[i] = BigInt(Math.trunc(values[i]));
  return {
    name,
    dims,
    dataType: DT.INT64,
    rawData: Buffer.from(big.buffer),
    floatData: [],
    int32Data: [],
    int64Data: [],
    doubleData: [],
    dataLocation: 0,
  };
}
