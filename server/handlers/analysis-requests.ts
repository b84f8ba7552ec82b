/**
 * Decoding of the analysis requests' shared parts (average spec, attribution, similarity method and
 * metric; layer, channel and class lists in ./analysis-selections.ts) into job settings, with the
 * defaults filled in (services/jobs/defaults.ts). Every error is INVALID_ARGUMENT naming the request
 * field (`prefix` carries the path to it).
 */
import {
  AttributionMethod,
  AverageKind,
  NeuronObjective,
  SimilarityMethod,
  SimilarityMetric,
  SmoothGradForm,
  type AverageSpec,
  type Attribution,
  type AttributionWrapper,
} from '../../api/generated/introspect/v1/analysis';
import type { MetricName } from '../../services/analysis/metrics';
import { inputSize } from '../../services/analysis/neuron-images';
import { resolveMethod, type AttributionSettings, type WrapperSpec } from '../../services/methods/registry';
import type { SmoothGradForm as SmoothGradFormName } from '../../services/methods/smoothgrad';
import type { SimilarityMethodNumber } from '../../services/analysis/similarity';
import type { NeuronObjective as ObjectiveName } from '../../services/engines/engine';
import type { EngineModel } from '../../services/engines/engine';
import { invalidArgument } from '../../services/errors';
import type { AverageKindName, AverageSettings } from '../../services/jobs/averages';
import { ACTIVATION_MAX_DEFAULTS, DEFAULT_K } from '../../services/jobs/defaults';
import { splitFromWire } from '../convert';
import { decodeTensor } from '../tensors';

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

const SMOOTHGRAD_FORMS: Record<number, SmoothGradFormName> = {
  [SmoothGradForm.SMOOTH_GRAD_FORM_UNSPECIFIED]: 'mean',
  [SmoothGradForm.SMOOTH_GRAD_FORM_MEAN]: 'mean',
  [SmoothGradForm.SMOOTH_GRAD_FORM_SQUARED]: 'squared',
  [SmoothGradForm.SMOOTH_GRAD_FORM_VARIANCE]: 'variance',
};

/** One wrapper as the method registry takes it (its parameters are checked there). */
function wrapperFromWire(w: AttributionWrapper, model: EngineModel, at: string): WrapperSpec {
  switch (w.wrapper?.$case) {
    case 'integratedGradients': {
      const { steps, baseline } = w.wrapper.value;
      return { kind: 'integrated_gradients', steps, baseline: baseline && inputSpaceImage(baseline, model, `${at}.integrated_gradients.baseline`) };
    }
    case 'smoothgrad': {
      const { samples, noiseLevel, seed, form } = w.wrapper.value;
      const name = SMOOTHGRAD_FORMS[form];
      if (name === undefined) throw invalidArgument(`${at}.smoothgrad.form: unknown SmoothGrad form ${String(form)}`);
      return { kind: 'smoothgrad', samples, noiseLevel, seed, form: name };
    }
    case 'inputXGradient':
      return { kind: 'input_x_gradient' };
    default:
      throw invalidArgument(`${at}: set one of integrated_gradients, smoothgrad or input_x_gradient`);
  }
}

/**
 * Attribution settings (default guided backprop, objective sum(|z|)), checked here by the method
 * registry (which also fills in the defaults when it runs them); baselines are checked against the model.
 */
export function attributionFromWire(a: Attribution | undefined, model: EngineModel, prefix = 'attribution'): AttributionSettings {
  const method = METHODS[a?.method ?? 0];
  if (method === undefined) throw invalidArgument(`${field(prefix, 'method')}: unknown attribution method ${String(a?.method)}`);
  const objective = OBJECTIVES[a?.objective ?? 0];
  if (objective === undefined) throw invalidArgument(`${field(prefix, 'objective')}: unknown neuron objective ${String(a?.objective)}`);
  const settings: AttributionSettings = { method, objective };
  if (method === 'integrated_gradients') {
    if (a?.igSteps) settings.igSteps = a.igSteps;
    if (a?.igBaseline) settings.igBaseline = inputSpaceImage(a.igBaseline, model, field(prefix, 'ig_baseline'));
  }
  const wrappers = a?.wrappers ?? [];
  if (wrappers.length > 0) settings.wrappers = wrappers.map((w, i) => wrapperFromWire(w, model, `${field(prefix, 'wrappers')}[${i}]`));
  resolveMethod(settings, inputSize(model), prefix);
  return settings;
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
