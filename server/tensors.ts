/**
 * Tensors on the wire (shape + dtype + raw little-endian bytes) ↔ typed arrays. Decoding checks
 * that the shape is sane and the byte count matches it, naming the field.
 */
import * as os from 'node:os';
import { ElementType, type Tensor } from '../api/generated/introspect/v1/common';
import { invalidArgument } from '../services/errors';

if (os.endianness() !== 'LE') throw new Error('cnn-introspect needs a little-endian host (tensors travel little-endian)');

export type DecodedTensor =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array };

const MAX_ELEMENTS = 2 ** 31 - 1;

export function decodeTensor(t: Tensor | undefined, field: string): DecodedTensor {
  if (!t) throw invalidArgument(`${field} is required`);
  const shape = t.shape;
  if (shape.length === 0) throw invalidArgument(`${field}.shape is empty`);
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw invalidArgument(`${field}.shape [${shape.join(', ')}] must hold positive sizes`);
  }
  const elements = shape.reduce((a, b) => a * b, 1);
  if (elements > MAX_ELEMENTS) throw invalidArgument(`${field}.shape [${shape.join(', ')}] is too large`);
  const bytesPer = t.dtype === ElementType.ELEMENT_TYPE_UINT8 ? 1 : 4;
  if (t.dtype === ElementType.ELEMENT_TYPE_INT64) throw invalidArgument(`${field}.dtype INT64 is not accepted here`);
  if (t.data.byteLength !== elements * bytesPer) {
    throw invalidArgument(
      `${field}: shape [${shape.join(', ')}] needs ${elements * bytesPer} bytes of data, got ${t.data.byteLength}`,
    );
  }
  // Copy into a fresh, aligned buffer (the wire buffer may be shared and unaligned).
  const copy = new Uint8Array(t.data.byteLength);
  copy.set(t.data);
  switch (t.dtype) {
    case ElementType.ELEMENT_TYPE_UINT8:
      return { dtype: 'uint8', shape: [...shape], data: copy };
    case ElementType.ELEMENT_TYPE_FLOAT32:
      return { dtype: 'float32', shape: [...shape], data: new Float32Array(copy.buffer) };
    case ElementType.ELEMENT_TYPE_INT32:
      return { dtype: 'int32', shape: [...shape], data: new Int32Array(copy.buffer) };
    default:
      throw invalidArgument(`${field}.dtype must be FLOAT32, UINT8 or INT32`);
  }
}

export function float32Tensor(data: Float32Array, shape: number[]): Tensor {
  return {
    shape: [...shape],
    dtype: ElementType.ELEMENT_TYPE_FLOAT32,
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  };
}

export function uint8Tensor(data: Uint8Array, shape: number[]): Tensor {
  return {
    shape: [...shape],
    dtype: ElementType.ELEMENT_TYPE_UINT8,
    data: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  };
}
