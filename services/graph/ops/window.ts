/** Reading 2-D window attributes (conv and pooling) from ONNX and Keras. */
import type { Pads4, Pair } from '../ir';
import { invalidArgument, unimplemented } from '../../errors';
import type { OnnxReadContext } from './op';

/** An ONNX 2-D attribute pair (default [d, d]). */
export function onnxPair(cx: OnnxReadContext, name: string, dflt: number): Pair {
  const v = cx.attrs.ints(name);
  if (!v) return [dflt, dflt];
  if (v.length !== 2) return cx.fail(`${name} [${v}] is not 2-D (only 2-D convolution and pooling are supported)`);
  return [v[0]!, v[1]!];
}

/** ONNX pads, explicit or from auto_pad. */
export function onnxPads(cx: OnnxReadContext, inHW: number[], kernel: Pair, strides: Pair, dil: Pair): Pads4 {
  const explicit = cx.attrs.ints('pads');
  const autoPad = cx.attrs.string('auto_pad', 'NOTSET');
  if (autoPad === 'NOTSET' || autoPad === '') {
    const p = explicit ?? [0, 0, 0, 0];
    if (p.length !== 4) return cx.fail(`pads [${p}] are not 2-D`);
    return [p[0]!, p[1]!, p[2]!, p[3]!];
  }
  if (autoPad === 'VALID') return [0, 0, 0, 0];
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') return cx.fail(`auto_pad ${autoPad}`);
  const begin: number[] = [];
  const end: number[] = [];
  for (let a = 0; a < 2; a++) {
    const out = Math.ceil(inHW[a]! / strides[a]);
    const total = Math.max((out - 1) * strides[a] + dil[a] * (kernel[a] - 1) + 1 - inHW[a]!, 0);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_UPPER' ? small : total - small);
    end.push(total - begin[a]!);
  }
  return [begin[0]!, begin[1]!, end[0]!, end[1]!];
}

/** A Keras number-or-pair. */
export function kerasPair(v: unknown, layer: string): Pair {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
  throw invalidArgument(`layer ${layer}: expected a number or a pair, got ${JSON.stringify(v)}`);
}

/** TensorFlow's padding: 'valid' = none; 'same' = output ceil(in / stride), the odd cell at the bottom/right. */
export function kerasPads(mode: string, size: Pair, kernel: Pair, strides: Pair, dilations: Pair, layer: string): Pads4 {
  if (mode === 'valid') return [0, 0, 0, 0];
  if (mode !== 'same') throw unimplemented(`layer ${layer}: padding ${mode} is not supported`);
  const total = [0, 1].map((a) => {
    const out = Math.ceil(size[a]! / strides[a]!);
    return Math.max((out - 1) * strides[a]! + (kernel[a]! - 1) * dilations[a]! + 1 - size[a]!, 0);
  });
  const top = Math.floor(total[0]! / 2);
  const left = Math.floor(total[1]! / 2);
  return [top, left, total[0]! - top, total[1]! - left];
}
