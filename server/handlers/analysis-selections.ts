/**
 * Decoding of the conv layers, channels and classes a request names (each default: all of them),
 * checked against the model (and data set). Errors are INVALID_ARGUMENT naming the field.
 */
import type { LayerSelection } from '../../api/generated/introspect/v1/analysis';
import type { LayerChannels } from '../../services/analysis/neuron-images';
import type { Dataset } from '../../services/data/dataset';
import type { EngineModel } from '../../services/engines/engine';
import { invalidArgument } from '../../services/errors';
import type { LoadedModel } from '../../services/models/model';

function convLayerAt(model: EngineModel, layer: number, name: string): { channels: number; node: string } {
  const conv = model.convLayers[layer];
  if (!Number.isInteger(layer) || conv === undefined) {
    const n = model.convLayers.length;
    throw invalidArgument(`${name} = ${layer}: no such conv layer (the model has ${n} conv layer${n === 1 ? '' : 's'}, 0..${n - 1})`);
  }
  return conv;
}

/** Conv layer indices (default all), each checked, no repeats. */
export function layerIndicesFromWire(layers: number[], model: EngineModel, name = 'layers'): number[] {
  if (layers.length === 0) return model.convLayers.map((l) => l.index);
  layers.forEach((l, i) => convLayerAt(model, l, `${name}[${i}]`));
  noRepeats(layers, name);
  return [...layers];
}

/** Layer selections (default: every channel of every conv layer) → explicit channel lists. */
export function layerSelectionsFromWire(selections: LayerSelection[], model: EngineModel, name = 'layers'): Required<LayerChannels>[] {
  if (selections.length === 0) {
    return model.convLayers.map((l) => ({ layer: l.index, channels: Array.from({ length: l.channels }, (_, k) => k) }));
  }
  return selections.map((s, i) => {
    const at = `${name}[${i}]`;
    const conv = convLayerAt(model, s.layer, `${at}.layer`);
    if (s.channels.length > 0) {
      if (s.start !== 0 || s.end !== 0) throw invalidArgument(`${at}: give either channels or a start/end range, not both`);
      return { layer: s.layer, channels: channelsFromWire(s.layer, s.channels, model, `${at}.layer`, `${at}.channels`) };
    }
    const end = s.end === 0 ? conv.channels : s.end;
    if (end > conv.channels) {
      throw invalidArgument(`${at}.end = ${end} is out of range: conv layer ${s.layer} (${conv.node}) has ${conv.channels} channels`);
    }
    if (s.start >= end) throw invalidArgument(`${at}.start = ${s.start} must be below end = ${end}`);
    return { layer: s.layer, channels: Array.from({ length: end - s.start }, (_, k) => s.start + k) };
  });
}

/** Channels of one conv layer (default all of them), each checked against the layer. */
export function channelsFromWire(layer: number, channels: number[], model: EngineModel, layerName: string, name: string): number[] {
  const conv = convLayerAt(model, layer, layerName);
  if (channels.length === 0) return Array.from({ length: conv.channels }, (_, k) => k);
  const seen = new Set<number>();
  channels.forEach((k, j) => {
    if (k >= conv.channels) {
      throw invalidArgument(`${name}[${j}] = ${k} is out of range: conv layer ${layer} (${conv.node}) has ${conv.channels} channels, 0..${conv.channels - 1}`);
    }
    if (seen.has(k)) throw invalidArgument(`${name}[${j}] = ${k} is repeated`);
    seen.add(k);
  });
  return [...channels];
}

/** Class indices below `count` (default: all of them), no repeats. */
export function classesFromWire(classes: number[], count: number, what: string, name = 'classes'): number[] {
  if (classes.length === 0) return Array.from({ length: count }, (_, i) => i);
  classes.forEach((c, i) => {
    if (c >= count) throw invalidArgument(`${name}[${i}] = ${c} is out of range: ${what} has ${count} classes, 0..${count - 1}`);
  });
  noRepeats(classes, name);
  return [...classes];
}

function noRepeats(values: number[], name: string): void {
  const seen = new Set<number>();
  values.forEach((v, i) => {
    if (seen.has(v)) throw invalidArgument(`${name}[${i}] = ${v} is repeated`);
    seen.add(v);
  });
}

/** Classes of a data set the model can score: indices below both counts (default all of them). */
export function analysedClasses(classes: number[], model: LoadedModel, dataset: Dataset, name = 'classes'): number[] {
  const ds = dataset.summary.classNames.length;
  const mc = model.engineModel.classes;
  const what = ds <= mc ? `dataset '${dataset.summary.name}'` : `model '${model.name}' (its output)`;
  return classesFromWire(classes, Math.min(ds, mc), what, name);
}
