/**
 * tfjs weight manifests: the byte layout of weight data and its dequantization to float32, the rules of
 * tfjs-core's `decodeWeights` (io/io_utils.ts) in one place.
 *
 * Entries are read in manifest order from the concatenated shards (all groups, in order). An entry's bytes:
 * - no `quantization`: its `dtype` (float32, int32: 4 bytes; bool: 1; complex64: 8; string: a 4-byte
 *   little-endian length before each element's bytes);
 * - `quantization: {dtype: 'uint8' | 'uint16', min, scale}` (the converter's `--quantize_uint8/uint16`):
 *   one or two bytes per value, value = q·scale + min (rounded for int32 weights);
 * - `quantization: {dtype: 'float16'}` (`--quantize_float16`, float32 weights only): IEEE half floats.
 * All multi-byte values are little-endian. Weights of the `optimizer` group are skipped (not the model's).
 */
import { invalidArgument, unimplemented } from '../errors';
import type { WeightTensor } from './ir';

/** One manifest entry as read from model.json. */
interface Spec {
  name: string;
  shape: number[];
  dtype: string;
  group?: unknown;
  quantization?: { dtype: string; min?: unknown; scale?: unknown };
}

const PLAIN_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Readonly<Record<string, number>> = { uint8: 1, uint16: 2, float16: 2 };

/** The weight entries of a model.json: `weightsManifest` groups (files) or `weightSpecs` (in-memory artifacts). */
export function weightSpecsOf(json: Record<string, unknown>): unknown[] {
  if (Array.isArray(json.weightsManifest)) {
    return json.weightsManifest.flatMap((g) => {
      if (!g || typeof g !== 'object') throw invalidArgument('a weightsManifest entry is not an object');
      const w = (g as { weights?: unknown }).weights;
      if (!Array.isArray(w)) throw invalidArgument('a weightsManifest entry has no list of weights');
      return w;
    });
  }
  if (Array.isArray(json.weightSpecs)) return json.weightSpecs;
  throw invalidArgument('model.json has neither weightsManifest nor weightSpecs');
}

/**
 * Decodes every model weight of `specs` from `bytes` to float32. Fails on data shorter or longer than the
 * manifest describes, on quantization metadata tfjs would refuse, and on non-float model weights.
 */
export function decodeTfjsWeights(specs: unknown[], bytes: Uint8Array): Map<string, WeightTensor> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const map = new Map<string, WeightTensor>();
  let offset = 0;
  for (const raw of specs) {
    const spec = readSpec(raw);
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const length = byteLength(spec, count, view, offset);
    if (offset + length > bytes.byteLength) {
      throw invalidArgument(`weight data too short: ${spec.name} needs bytes ${offset}..${offset + length}, have ${bytes.byteLength}`);
    }
    if (spec.group !== 'optimizer') {
      if (map.has(spec.name)) throw invalidArgument(`weight ${spec.name} appears twice in the weight manifest`);
      map.set(spec.name, { shape: spec.shape, data: decode(spec, count, view, offset) });
    }
    offset += length;
  }
  if (offset !== bytes.byteLength) {
    throw invalidArgument(`weight data is ${bytes.byteLength} bytes but the manifest describes ${offset}`);
  }
  return map;
}

function readSpec(raw: unknown): Spec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalidArgument('a weight spec is not an object');
  const s = raw as Record<string, unknown>;
  if (typeof s.name !== 'string') throw invalidArgument(`a weight spec has no name: ${JSON.stringify(raw).slice(0, 120)}`);
  const shape = Array.isArray(s.shape) ? s.shape.map(Number) : [];
  if (!Array.isArray(s.shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw invalidArgument(`weight ${s.name}: shape ${JSON.stringify(s.shape)} is not a list of sizes`);
  }
  const dtype = s.dtype === undefined ? 'float32' : String(s.dtype);
  let quantization: Spec['quantization'];
  if (s.quantization !== undefined && s.quantization !== null) {
    const q = s.quantization as Record<string, unknown>;
    if (typeof q !== 'object' || typeof q.dtype !== 'string') {
      throw invalidArgument(`weight ${s.name}: quantization ${JSON.stringify(s.quantization)} has no dtype`);
    }
    quantization = { dtype: q.dtype, min: q.min, scale: q.scale };
  }
  return { name: s.name, shape, dtype, group: s.group, quantization };
}

function byteLength(spec: Spec, count: number, view: DataView, offset: number): number {
  const q = spec.quantization;
  if (q) {
    const per = QUANTIZED_BYTES[q.dtype];
    if (per === undefined) {
      throw unimplemented(`weight ${spec.name} is quantized as ${q.dtype}; tfjs quantization is uint8, uint16 or float16`);
    }
    return count * per;
  }
  if (spec.dtype === 'string') {
    let length = 0;
    for (let i = 0; i < count; i++) {
      if (offset + length + 4 > view.byteLength) throw invalidArgument(`weight data too short in string weight ${spec.name}`);
      length += 4 + view.getUint32(offset + length, true);
    }
    return length;
  }
  const per = PLAIN_BYTES[spec.dtype];
  if (per === undefined) throw unimplemented(`weight ${spec.name} has dtype ${spec.dtype}, which tfjs weight files do not define`);
  return count * per;
}

function decode(spec: Spec, count: number, view: DataView, offset: number): Float32Array {
  const q = spec.quantization;
  const out = new Float32Array(count);
  if (!q) {
    if (spec.dtype !== 'float32') {
      throw unimplemented(`weight ${spec.name} has dtype ${spec.dtype}; model weights must be float32 (plain or quantized)`);
    }
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, true);
    return out;
  }
  if (q.dtype === 'float16') {
    if (spec.dtype !== 'float32') {
      throw invalidArgument(`weight ${spec.name}: float16 quantization is defined for float32 weights only, not ${spec.dtype}`);
    }
    for (let i = 0; i < count; i++) out[i] = float16ToNumber(view.getUint16(offset + 2 * i, true));
    return out;
  }
  const min = q.min;
  const scale = q.scale;
  if (typeof min !== 'number' || typeof scale !== 'number' || !Number.isFinite(min) || !Number.isFinite(scale)) {
    throw invalidArgument(
      `weight ${spec.name} is quantized as ${q.dtype} but its quantization lacks numeric min and scale (value = q·scale + min), got ${JSON.stringify(spec.quantization)}`,
    );
  }
  if (spec.dtype !== 'float32') {
    throw unimplemented(`weight ${spec.name} has dtype ${spec.dtype}; model weights must be float32 (plain or quantized)`);
  }
  const wide = q.dtype === 'uint16';
  for (let i = 0; i < count; i++) {
    const v = wide ? view.getUint16(offset + 2 * i, true) : view.getUint8(offset + i);
    out[i] = v * scale + min;
  }
  return out;
}

/** An IEEE 754 half-precision bit pattern as a number (exact: every half is a float32). */
export function float16ToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
