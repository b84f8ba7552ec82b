/**
 * IR -> ONNX forward model, in memory:
 *   input  `input`  float [N, C, H, W] (N dynamic)
 *   output `logits` float [N, classes]
 *   for each conv layer j in `activationStats`: outputs `act_mean_<j>` and `act_zero_<j>` [N, Cj], the
 *     spatial mean of layer j's activation (the activation op applied to z_j, or z_j when it has none)
 *     and the fraction of its positions that are <= 0;
 *   for each conv layer j in `maskLayers`: input `mask_<j>` float [Cj] multiplied onto z_j
 *     (1 keeps a channel, 0 prunes it; everything downstream, statistics included, sees the product).
 */
import type { ConvLayer, IrGraph } from './ir';
import { OnnxBuilder } from './onnx-builder';
import { EXPORT_OPSET, ForwardEmitter } from './ir-to-onnx';
import { activationValue, convLayers } from './layers';
import { shapeSize } from './ir-shapes';
import { invalidArgument } from '../errors';
import { ALL_PASSES, type PassSet } from './passes';

export interface ForwardExportOptions {
  activationStats?: number[];
  maskLayers?: number[];
  /** Device passes the forward may use (default: all; ./passes). */
  passes?: PassSet;
}

/** Checks conv layer indices (no duplicates, in range) and returns the layers. */
export function pickLayers(layers: ConvLayer[], indices: number[], what: string): ConvLayer[] {
  const seen = new Set<number>();
  return indices.map((j) => {
    if (!Number.isInteger(j) || j < 0 || j >= layers.length) {
      throw invalidArgument(`${what}: conv layer ${j} does not exist (the model has ${layers.length} conv layers, 0..${layers.length - 1})`);
    }
    if (seen.has(j)) throw invalidArgument(`${what}: conv layer ${j} is listed twice`);
    seen.add(j);
    return layers[j];
  });
}

export function exportForward(g: IrGraph, opts: ForwardExportOptions = {}): Uint8Array {
  const layers = convLayers(g);
  const stats = pickLayers(layers, opts.activationStats ?? [], 'activationStats');
  const masks = pickLayers(layers, opts.maskLayers ?? [], 'maskLayers');
  const b = new OnnxBuilder('forward');
  const input = b.input('input', ['N', ...g.input.shape]);
  b.reserve('logits');
  for (const l of stats) {
    b.reserve(`act_mean_${l.index}`);
    b.reserve(`act_zero_${l.index}`);
  }
  const maskInputs = new Map<string, { layer: ConvLayer; input: string }>();
  for (const l of masks) maskInputs.set(l.output, { layer: l, input: b.input(`mask_${l.index}`, [l.channels]) });

  const em = new ForwardEmitter(b, g, input, opts.passes ?? ALL_PASSES);
  const values = new Map<string, string>([[g.input.name, input]]);
  const outShape = g.shapes.get(g.output) ?? [];
  for (const n of g.nodes) {
    const ins = n.inputs.map((v) => values.get(v) as string);
    const isOut = n.output === g.output && outShape.length === 1 && !maskInputs.has(n.output);
    let out = em.emit(n, ins, isOut ? 'logits' : undefined);
    const mask = maskInputs.get(n.output);
    if (mask) {
      const m = b.node('Reshape', [mask.input, b.ints('mask_shape', [mask.layer.channels, 1, 1])]);
      out = b.node('Mul', [out, m]);
    }
    values.set(n.output, out);
  }
  const logits = values.get(g.output) as string;
  if (logits !== 'logits') {
    if (outShape.length === 1) b.node('Identity', [logits], {}, 'logits');
    else b.node('Flatten', [logits], { axis: { i: 1 } }, 'logits');
  }
  b.output('logits', ['N', shapeSize(outShape)]);

  for (const l of stats) {
    const a = values.get(activationValue(g, l)) as string;
    b.node('ReduceMean', [a], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }, `act_mean_${l.index}`);
    const zero = b.node('Cast', [b.node('LessOrEqual', [a, b.floats('zero', [0], [])])], { to: { i: 1 } });
    b.node('ReduceMean', [zero], { axes: { ints: [2, 3] }, keepdims: { i: 0 } }, `act_zero_${l.index}`);
    b.output(`act_mean_${l.index}`, ['N', l.channels]);
    b.output(`act_zero_${l.index}`, ['N', l.channels]);
  }
  return b.encode(EXPORT_OPSET);
}
