/**
 * Checks shared by every engine: that a request fits the model (input sizes, layer and channel indices,
 * classes, masks).
 */
import { invalidArgument } from '../errors';
import type { ConvLayer, Shape } from '../graph/ir';
import type { AttributionTarget, ChannelMask, EngineModel, ReluRule, RunOptions } from './engine';

export const sizeOf = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Number of floats in one input sample. */
export function sampleSize(model: EngineModel): number {
  return sizeOf(model.graph.input.shape);
}

export function checkInput(model: EngineModel, input: Float32Array, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw invalidArgument(`image count must be a positive integer, got ${n}`);
  const per = sampleSize(model);
  if (input.length !== n * per) {
    throw invalidArgument(
      `input has ${input.length} floats; ${n} image(s) of shape [${model.graph.input.shape.join(', ')}] need ${n * per}`,
    );
  }
}

export function convLayer(model: EngineModel, layer: number): ConvLayer {
  const l = model.convLayers[layer];
  if (!Number.isInteger(layer) || !l) {
    throw invalidArgument(`conv layer ${layer} does not exist: the model has ${model.convLayers.length} (0..${model.convLayers.length - 1})`);
  }
  return l;
}

export function checkLayers(model: EngineModel, layers: number[]): ConvLayer[] {
  if (layers.length === 0) throw invalidArgument('no layers requested');
  return layers.map((l) => convLayer(model, l));
}

/** Validates masks; returns them as sorted layer indices with their channels (empty when none). */
export function checkMask(model: EngineModel, mask: ChannelMask | undefined): Array<{ layer: ConvLayer; channels: Uint32Array }> {
  if (!mask) return [];
  const out: Array<{ layer: ConvLayer; channels: Uint32Array }> = [];
  for (const [j, channels] of [...mask.entries()].sort((a, b) => a[0] - b[0])) {
    const layer = convLayer(model, j);
    for (const c of channels) {
      if (c >= layer.channels) throw invalidArgument(`mask channel ${c} is out of range for conv layer ${j} (${layer.channels} channels)`);
    }
    out.push({ layer, channels });
  }
  return out;
}

/** The [C] mask vector of a conv layer: 1, with 0 at the masked channels. */
export function maskVector(channels: number, masked: Uint32Array): Float32Array {
  const v = new Float32Array(channels).fill(1);
  for (const c of masked) v[c] = 0;
  return v;
}

/** Number of rows (neurons or classes) of a target, after validating it against the model. */
export function checkTarget(model: EngineModel, target: AttributionTarget): number {
  if (target.kind === 'conv') {
    const l = convLayer(model, target.layer);
    if (target.objective !== 'abs_sum' && target.objective !== 'relu_sum') {
      throw invalidArgument(`unknown neuron objective ${String(target.objective)}`);
    }
    if (target.channels.length === 0) throw invalidArgument('no channels requested');
    for (const c of target.channels) {
      if (!Number.isInteger(c) || c < 0 || c >= l.channels) {
        throw invalidArgument(`channel ${c} is out of range for conv layer ${target.layer} (${l.channels} channels)`);
      }
    }
    return target.channels.length;
  }
  if (target.kind === 'logit') {
    if (target.classes.length === 0) throw invalidArgument('no classes requested');
    for (const c of target.classes) {
      if (!Number.isInteger(c) || c < 0 || c >= model.classes) {
        throw invalidArgument(`class ${c} is out of range (the model has ${model.classes} classes)`);
      }
    }
    return target.classes.length;
  }
  throw invalidArgument(`unknown attribution target kind ${String((target as { kind: unknown }).kind)}`);
}

export function checkAttributionOptions(opts: RunOptions | undefined): void {
  if (opts?.mask && opts.mask.size > 0) {
    throw invalidArgument('channel masks apply to forward and activations only, not to attribution');
  }
}

export function checkRule(rule: ReluRule): void {
  if (rule !== 'gradient' && rule !== 'guided' && rule !== 'deconv') throw invalidArgument(`unknown ReLU rule ${String(rule)}`);
}
