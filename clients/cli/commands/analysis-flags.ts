/**
 * Flags the analysis commands share: engine, class-average spec, attribution, similarity settings,
 * layer selections; and the small helpers that turn them into request fields.
 */
import {
  AttributionMethod,
  AverageKind,
  NeuronObjective,
  SimilarityMethod,
  SimilarityMetric,
  SmoothGradForm,
  type Attribution,
  type AttributionWrapper,
  type AverageSpec,
  type LayerSelection,
  type SimilarityRequest,
} from '../../../api/generated/introspect/v1/analysis';
import { Engine } from '../../../api/generated/introspect/v1/common';
import { UsageError, numberListFlag, type FlagSpec, type FlagValue, type ParsedArgs } from '../args';
import { bool, num, str } from '../command';
import { SPLIT_FLAG, splitFlag } from '../split';

export const ENGINE_FLAG: Record<string, FlagSpec> = {
  engine: { type: 'string', arg: 'onnxruntime|tfjs', help: "engine (default: the server's)" },
};

export function engineFlag(v: string | undefined): Engine {
  if (v === undefined) return Engine.ENGINE_UNSPECIFIED;
  if (v === 'onnxruntime' || v === 'ort') return Engine.ENGINE_ONNXRUNTIME;
  if (v === 'tfjs') return Engine.ENGINE_TFJS;
  throw new UsageError(`--engine must be onnxruntime or tfjs, not '${v}'`);
}

export const AVERAGE_FLAGS: Record<string, FlagSpec> = {
  kind: { type: 'string', arg: 'KIND', help: 'class image: mean (default), top-k, bottom-k or activation-max' },
  k: { type: 'number', arg: 'K', help: 'top-k / bottom-k: images averaged (default 100)' },
  rescale: { type: 'boolean', help: 'per-channel min-max rescale (default: on for mean; --no-rescale turns it off)' },
  ...SPLIT_FLAG,
  steps: { type: 'number', arg: 'N', help: 'activation-max: gradient steps (default 100)' },
  'step-size': { type: 'number', arg: 'X', help: 'activation-max: step size (default 0.01)' },
  'stop-probability': { type: 'number', arg: 'P', help: 'activation-max: stop at this probability (default 0.99)' },
};

export const AVERAGE_KINDS: Record<string, AverageKind> = {
  mean: AverageKind.AVERAGE_KIND_MEAN,
  'top-k': AverageKind.AVERAGE_KIND_TOP_K,
  'bottom-k': AverageKind.AVERAGE_KIND_BOTTOM_K,
  'activation-max': AverageKind.AVERAGE_KIND_ACTIVATION_MAX,
};

/** A non-negative whole number flag (0 when absent). */
export function count(args: ParsedArgs, name: string): number {
  const v = num(args, name);
  if (v === undefined) return 0;
  if (!Number.isInteger(v) || v < 0) throw new UsageError(`--${name} must be a whole number >= 0, got ${v}`);
  return v;
}

export function averageSpec(args: ParsedArgs): AverageSpec {
  const k = str(args, 'kind') ?? 'mean';
  const kind = AVERAGE_KINDS[k];
  if (kind === undefined) throw new UsageError(`--kind must be one of ${Object.keys(AVERAGE_KINDS).join(', ')}, not '${k}'`);
  return {
    kind,
    k: count(args, 'k'),
    rescale: bool(args, 'rescale'),
    split: splitFlag(str(args, 'split')),
    steps: count(args, 'steps'),
    stepSize: num(args, 'step-size') ?? 0,
    stopProbability: num(args, 'stop-probability') ?? 0,
  };
}

export const ATTRIBUTION_FLAGS: Record<string, FlagSpec> = {
  attribution: { type: 'string', arg: 'METHOD', help: 'gbp (guided backprop, default), deconv, gradient or ig' },
  objective: { type: 'string', arg: 'abs|relu', help: 'neuron objective: sum(|z|) (default) or sum(relu(z))' },
  'ig-steps': { type: 'number', arg: 'M', help: 'integrated gradients: steps (default 32)' },
};

const ATTRIBUTION_METHODS: Record<string, AttributionMethod> = {
  gbp: AttributionMethod.ATTRIBUTION_METHOD_GUIDED_BACKPROP,
  deconv: AttributionMethod.ATTRIBUTION_METHOD_DECONVNET,
  gradient: AttributionMethod.ATTRIBUTION_METHOD_GRADIENT,
  ig: AttributionMethod.ATTRIBUTION_METHOD_INTEGRATED_GRADIENTS,
};

export function attributionSpec(args: ParsedArgs): Attribution {
  const m = str(args, 'attribution') ?? 'gbp';
  const method = ATTRIBUTION_METHODS[m];
  if (method === undefined) throw new UsageError(`--attribution must be one of ${Object.keys(ATTRIBUTION_METHODS).join(', ')}, not '${m}'`);
  const o = str(args, 'objective') ?? 'abs';
  if (o !== 'abs' && o !== 'relu') throw new UsageError(`--objective must be abs or relu, not '${o}'`);
  return {
    method,
    objective: o === 'abs' ? NeuronObjective.NEURON_OBJECTIVE_ABS_SUM : NeuronObjective.NEURON_OBJECTIVE_RELU_SUM,
    igSteps: count(args, 'ig-steps'),
    wrappers: [],
  };
}

/** Wrappers over the attribution method (the neurons command): input × gradient, then SmoothGrad outermost. */
export const WRAPPER_FLAGS: Record<string, FlagSpec> = {
  'input-x-gradient': { type: 'boolean', help: 'multiply the attribution by the input (input × gradient with --attribution gradient)' },
  smoothgrad: { type: 'number', arg: 'N', help: 'SmoothGrad over the method: mean over N noisy copies of the input (default off)' },
  noise: { type: 'number', arg: 'X', help: 'SmoothGrad: noise σ as a fraction of the input range max − min (default 0.15)' },
  seed: { type: 'number', arg: 'S', help: 'SmoothGrad: seed of the noise (default 0)' },
  'smoothgrad-form': { type: 'string', arg: 'FORM', help: 'SmoothGrad: mean (default), squared (SmoothGrad²) or variance (VarGrad)' },
};

const SMOOTHGRAD_FORMS: Record<string, SmoothGradForm> = {
  mean: SmoothGradForm.SMOOTH_GRAD_FORM_MEAN,
  squared: SmoothGradForm.SMOOTH_GRAD_FORM_SQUARED,
  variance: SmoothGradForm.SMOOTH_GRAD_FORM_VARIANCE,
};

export function wrapperSpecs(args: ParsedArgs): AttributionWrapper[] {
  const wrappers: AttributionWrapper[] = [];
  if (bool(args, 'input-x-gradient')) wrappers.push({ wrapper: { $case: 'inputXGradient', value: {} } });
  const samples = count(args, 'smoothgrad');
  if (samples === 0) {
    for (const f of ['noise', 'seed', 'smoothgrad-form']) if (args.flags[f] !== undefined) throw new UsageError(`--${f} needs --smoothgrad N`);
    return wrappers;
  }
  const noiseLevel = num(args, 'noise') ?? 0;
  if (!(noiseLevel >= 0)) throw new UsageError(`--noise must be a number > 0, got ${noiseLevel}`);
  const f = str(args, 'smoothgrad-form') ?? 'mean';
  const form = SMOOTHGRAD_FORMS[f];
  if (form === undefined) throw new UsageError(`--smoothgrad-form must be one of ${Object.keys(SMOOTHGRAD_FORMS).join(', ')}, not '${f}'`);
  wrappers.push({ wrapper: { $case: 'smoothgrad', value: { samples, noiseLevel, seed: count(args, 'seed'), form } } });
  return wrappers;
}

export const SIMILARITY_FLAGS: Record<string, FlagSpec> = {
  method: { type: 'string', arg: '1|2', help: 'similarity method: 1 = vs the class average (default), 2 = vs the class logit GBP' },
  metric: { type: 'string', arg: 'METRIC', help: 'cosine (default), euclidean, pearson, histogram or phash' },
  layers: { type: 'string', arg: 'L,..', help: 'conv layer indices (default all)' },
  classes: { type: 'string', arg: 'I,J,..', help: 'class indices (default all)' },
};

const METRICS: Record<string, SimilarityMetric> = {
  cosine: SimilarityMetric.SIMILARITY_METRIC_COSINE,
  euclidean: SimilarityMetric.SIMILARITY_METRIC_EUCLIDEAN,
  pearson: SimilarityMetric.SIMILARITY_METRIC_PEARSON,
  histogram: SimilarityMetric.SIMILARITY_METRIC_HISTOGRAM,
  phash: SimilarityMetric.SIMILARITY_METRIC_PHASH,
};

export function similarityMethodFlag(v: string | undefined): SimilarityMethod {
  if (v === undefined || v === '1' || v === 'vs-average') return SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE;
  if (v === '2' || v === 'vs-class-gbp') return SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP;
  throw new UsageError(`--method must be 1 (vs-average) or 2 (vs-class-gbp), not '${v}'`);
}

export function indexList(args: ParsedArgs, name: string): number[] {
  const values = numberListFlag(args.flags[name], name);
  for (const v of values) if (!Number.isInteger(v) || v < 0) throw new UsageError(`--${name}: '${v}' is not an index`);
  return values;
}

/** The similarity request the flags describe (model and dataset from the caller). */
export function similarityRequest(args: ParsedArgs, model: string, dataset: string): SimilarityRequest {
  const m = str(args, 'metric') ?? 'cosine';
  const metric = METRICS[m];
  if (metric === undefined) throw new UsageError(`--metric must be one of ${Object.keys(METRICS).join(', ')}, not '${m}'`);
  return {
    model,
    dataset,
    average: averageSpec(args),
    method: similarityMethodFlag(str(args, 'method')),
    metric,
    layers: indexList(args, 'layers'),
    classes: indexList(args, 'classes'),
    attribution: attributionSpec(args),
    engine: engineFlag(str(args, 'engine')),
    rankImages: 0,
    png: false,
    deadAsZero: false,
  };
}

/**
 * `--layer` values: `L` (every channel), `L:A-B` (channels A..B inclusive) or `L:i,j,k`.
 * Several may be given (repeat the flag, or separate with ';').
 */
export function layerSelections(v: FlagValue | undefined): LayerSelection[] {
  const specs = v === undefined ? [] : (Array.isArray(v) ? v.map(String) : [String(v)]).flatMap((s) => s.split(';')).filter((s) => s.trim() !== '');
  return specs.map((spec) => {
    const m = /^(\d+)(?::(.+))?$/.exec(spec.trim());
    if (!m) throw new UsageError(`--layer '${spec}': expected L, L:A-B or L:i,j,k`);
    const layer = Number(m[1]);
    const rest = m[2];
    if (rest === undefined) return { layer, channels: [], start: 0, end: 0 };
    const range = /^(\d+)-(\d+)$/.exec(rest);
    if (range) {
      const a = Number(range[1]);
      const b = Number(range[2]);
      if (b < a) throw new UsageError(`--layer '${spec}': the range ends before it starts`);
      return { layer, channels: [], start: a, end: b + 1 };
    }
    const channels = rest.split(/[,+]/).map((s) => {
      if (!/^\d+$/.test(s.trim())) throw new UsageError(`--layer '${spec}': '${s}' is not a channel index`);
      return Number(s);
    });
    return { layer, channels, start: 0, end: 0 };
  });
}
