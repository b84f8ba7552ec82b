/**
 * Decoding of the analysis requests' shared parts (average spec, attribution, layer selections,
 * similarity method and metric, class lists) into service settings, with the proto defaults filled
 * in. Every error is INVALID_ARGUMENT naming the request field (`prefix` carries the path to it).
 */
import {
  AttributionMethod,
  AverageKind,
  NeuronObjective,
  SimilarityMethod,
  SimilarityMetric,
  type AverageSpec,
  type Attribution,
  type LayerSelection,
} from '../../clients/generated/introspect/v1/analysis';
import { ACTIVATION_MAX_DEFAULTS } from '../../services/analysis/activation-max';
import { DEFAULT_K } from '../../services/analysis/averages';
import type { MetricName } from '../../services/analysis/metrics';
import { DEFAULT_IG_STEPS, type AttributionSettings, type LayerChannels } from '../../services/analysis/neuron-images';
import type { SimilarityMethodNumber } from '../../services/analysis/similarity';
import type { SplitName } from '../../services/data/dataset';
import type { NeuronObjective as ObjectiveName } from '../../services/engines/engine';
import type { EngineModel } from '../../services/engines/engine';
import { invalidArgument } from '../../services/errors';
import { splitFromWire } from '../convert';
import { decodeTensor } from '../tensors';

export type AverageKindName = 'mean' | 'top_k' | 'bottom_k' | 'activation_max';

/** An AverageSpec with its defaults resolved (what determines the images, so also a cache key part). */
export interface AverageSettings {
  kind: AverageKindName;
  split: SplitName;
  /** top_k / bottom_k only (undefined otherwise). */
  k?: number;
  /** undefined = the service's default (on for mean and activation maximisation's start). */
  rescale?: boolean;
  /** activation_max only. */
  steps?: number;
  stepSize?: number;
  stopProbability?: number;
}

/** Most gradient steps one activation maximisation may take. */
const MAX_STEPS = 100_000;
/** Largest top/bottom-k. */
const MAX_K = 1_000_000;

/** `a.b` or `b` when the prefix is empty. */
export function field(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

export function averageFromWire(spec: AverageSpec | undefined, prefix = 'average'): AverageSettings {
  const split = splitFromWire(spec?.split ?? 0, field(prefix, 'split'));
  const kindValue = spec?.kind ?? AverageKind.AVERAGE_KIND_UNSPECIFIED;
  let kind: AverageKindName;
  switch (kindValue) {
    case AverageKind.AVERAGE_KIND_UNSPECIFIED:
    case AverageKind.AVERAGE_KIND_MEAN:
      kind = 'mean';
      break;
    case AverageKind.AVERAGE_KIND_TOP_K:
      kind = 'top_k';
      break;
    case AverageKind.AVERAGE_KIND_BOTTOM_K:
      kind = 'bottom_k';
      break;
    case AverageKind.AVERAGE_KIND_ACTIVATION_MAX:
      kind = 'activation_max';
      break;
    default:
      throw invalidArgument(`${field(prefix, 'kind')}: unknown average kind ${String(kindValue)}`);
  }
  const out: AverageSettings = { kind, split, rescale: spec?.rescale };
  if (kind === 'top_k' || kind === 'bottom_k') {
    const k = spec?.k || DEFAULT_K;
    if (k > MAX_K) throw invalidArgument(`${field(prefix, 'k')} = ${k} is too large (at most ${MAX_K})`);
    out.k = k;
  }
  if (kind === 'activation_max') {
    const steps = spec?.steps || ACTIVATION_MAX_DEFAULTS.steps;
    if (steps > MAX_STEPS) throw invalidArgument(`${field(prefix, 'steps')} = ${steps} is too large (at most ${MAX_STEPS})`);
    const stepSize = spec?.stepSize || ACTIVATION_MAX_DEFAULTS.stepSize;
    if (!Number.isFinite(stepSize) || stepSize <= 0) {
      throw invalidArgument(`${field(prefix, 'step_size')} must be a positive number, got ${stepSize}`);
    }
    const stop = spec?.stopProbability || ACTIVATION_MAX_DEFAULTS.stopProbability;
    if (!(stop > 0 && stop <= 1)) throw invalidArgument(`${field(prefix, 'stop_probability')} must be in (0, 1], got ${stop}`);
    out.steps = steps;
    out.stepSize = stepSize;
    out.stopProbability = stop;
  }
  return out;
}

const METHODS: Record<number, AttributionSettings['method']> = {
  [AttributionMethod.ATTRIBUTION_METHOD_UNSPECIFIED]: 'guided',
  [AttributionMethod.ATTRIBUTION_METHOD_GUIDED_BACKPROP]: 'guided',
  [AttributionMethod.ATTRIBUTION_METHOD_DECONVNET]: 'deconv',
  [AttributionMethod.ATTRIBUTION_METHOD_GRADIENT]: 'gradient',
  [AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS]: 'integrated_gradients',
};

const OBJECTIVES: Record<number, ObjectiveName> = {
  [NeuronObjective.NEURON_OBJECTIVE_UNSPECIFIED]: 'abs_sum',
  [NeuronObjective.NEURON_OBJECTIVE_ABS_SUM]: 'abs_sum',
  [NeuronObjective.NEURON_OBJECTIVE_RELU_SUM]: 'relu_sum',
};

const MAX_IG_STEPS = 4096;

/** Attribution settings (default guided backprop, objective sum(|z|)); the IG baseline is checked against the model. */
export function attributionFromWire(a: Attribution | undefined, model: EngineModel, prefix = 'attribution'): AttributionSettings {
  const method = METHODS[a?.method ?? 0];
  if (method === undefined) throw invalidArgument(`${field(prefix, 'method')}: unknown attribution method ${String(a?.method)}`);
  const objective = OBJECTIVES[a?.objective ?? 0];
  if (objective === undefined) throw invalidArgument(`${field(prefix, 'objective')}: unknown neuron objective ${String(a?.objective)}`);
  const out: AttributionSettings = { method, objective };
  if (method === 'integrated_gradients') {
    const steps = a?.igSteps || DEFAULT_IG_STEPS;
    if (steps > MAX_IG_STEPS) throw invalidArgument(`${field(prefix, 'ig_steps')} = ${steps} is too large (at most ${MAX_IG_STEPS})`);
    out.igSteps = steps;
    if (a?.igBaseline) out.igBaseline = inputSpaceImage(a.igBaseline, model, field(prefix, 'ig_baseline'));
  }
  return out;
}

/** A float32 [C, H, W] tensor matching the model's input. */
export function inputSpaceImage(t: Parameters<typeof decodeTensor>[0], model: EngineModel, name: string): Float32Array {
  const d = decodeTensor(t, name);
  const want = model.graph.input.shape;
  if (d.dtype !== 'float32') throw invalidArgument(`${name}.dtype must be FLOAT32 (an image in the model's input space)`);
  if (d.shape.length !== want.length || d.shape.some((s, i) => s !== want[i])) {
    throw invalidArgument(`${name}.shape [${d.shape.join(', ')}] must be the model's input [${want.join(', ')}] (C, H, W)`);
  }
  if (!d.data.every((v) => Number.isFinite(v))) throw invalidArgument(`${name}: values must be finite`);
  return d.data;
}

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

export function similarityMethodFromWire(m: SimilarityMethod, name = 'method'): SimilarityMethodNumber {
  switch (m) {
    case SimilarityMethod.SIMILARITY_METHOD_UNSPECIFIED:
    case SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE:
      return 1;
    case SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP:
      return 2;
    default:
      throw invalidArgument(`${name}: unknown similarity method ${String(m)} (1 = vs average, 2 = vs class GBP)`);
  }
}

export function similarityMetricFromWire(m: SimilarityMetric, name = 'metric'): MetricName {
  switch (m) {
    case SimilarityMetric.SIMILARITY_METRIC_UNSPECIFIED:
    case SimilarityMetric.SIMILARITY_METRIC_COSINE:
      return 'cosine';
    case SimilarityMetric.SIMILARITY_METRIC_EUCLIDEAN:
      return 'euclidean';
    case SimilarityMetric.SIMILARITY_METRIC_PEARSON:
      return 'pearson';
    case SimilarityMetric.SIMILARITY_METRIC_HISTOGRAM:
      return 'histogram';
    case SimilarityMetric.SIMILARITY_METRIC_PHASH:
      return 'phash';
    default:
      throw invalidArgument(`${name}: unknown similarity metric ${String(m)}`);
  }
}
