/**
 * Attribution methods as a registry: a method is a base rule (the engine's backward rule through the
 * ReLUs) plus optional wrappers applied in order, the first wrapping the base rule and each next one
 * the result so far. The named methods of the API are entries here: `integrated_gradients` is the
 * plain gradient wrapped first by integrated gradients with the settings' `igSteps` / `igBaseline`.
 *
 * Everything about a method's parameters (names, defaults, checks) lives in its wrapper's module; this
 * module resolves a request once (INVALID_ARGUMENT naming the field, as `attribution.…` of the API) and
 * builds the attributor for a target: one engine call (batched over the target's rows) per base-rule
 * evaluation, so every noisy or interpolated input is one batched backward for all neurons of a chunk.
 */
import type { AttributionTarget, Engine, EngineModel, NeuronObjective, ReluRule } from '../engines/engine';
import { invalidArgument } from '../errors';
import { inputXGradient, type InputXGradientWrapper } from './input-x-gradient';
import { integratedGradients, type IntegratedGradientsWrapper } from './integrated-gradients';
import { smoothGrad, type SmoothGradWrapper } from './smoothgrad';
import type { Attributor, WrapperDefinition } from './wrapper';

export type { Attributor } from './wrapper';
export type WrapperSpec = IntegratedGradientsWrapper | SmoothGradWrapper | InputXGradientWrapper;
export type WrapperKind = WrapperSpec['kind'];

type Definitions = { [K in WrapperKind]: WrapperDefinition<Extract<WrapperSpec, { kind: K }>> };

/** The wrappers by name. A new wrapper is one module plus one line here (and its type in `WrapperSpec`). */
const WRAPPERS: Definitions = {
  integrated_gradients: integratedGradients,
  smoothgrad: smoothGrad,
  input_x_gradient: inputXGradient,
};
export const WRAPPER_KINDS = Object.keys(WRAPPERS) as WrapperKind[];

function definition<W extends WrapperSpec>(w: W): WrapperDefinition<W> {
  const d = (WRAPPERS as Record<string, WrapperDefinition<WrapperSpec> | undefined>)[w.kind];
  if (!d) throw invalidArgument(`unknown attribution wrapper '${String(w.kind)}' (one of ${WRAPPER_KINDS.join(', ')})`);
  return d as unknown as WrapperDefinition<W>;
}

/** The base rules, each the engine's rule of the same name. */
export const BASE_RULES: Readonly<Record<ReluRule, ReluRule>> = { gradient: 'gradient', guided: 'guided', deconv: 'deconv' };

interface NamedMethod {
  base: ReluRule;
  /** The wrappers the name stands for, from the settings' own fields; `field` names a parameter's request field. */
  wrappers: (s: AttributionSettings, prefix: string) => { spec: WrapperSpec; field: (param: string) => string }[];
}

/** The named methods of the API (AttributionMethod). */
const METHODS = {
  guided: { base: 'guided', wrappers: () => [] },
  deconv: { base: 'deconv', wrappers: () => [] },
  gradient: { base: 'gradient', wrappers: () => [] },
  integrated_gradients: {
    base: 'gradient',
    // Its parameters are the request's `ig_steps` and `ig_baseline`.
    wrappers: (s, prefix) => [{ spec: { kind: 'integrated_gradients', steps: s.igSteps, baseline: s.igBaseline }, field: (p) => `${prefix}.ig_${p}` }],
  },
} satisfies Record<string, NamedMethod>;

export type AttributionMethodName = keyof typeof METHODS;
export const ATTRIBUTION_METHODS = Object.keys(METHODS) as AttributionMethodName[];

/** A method as a request gives it (see the proto's `Attribution`). */
export interface AttributionSettings {
  method: AttributionMethodName;
  /** Conv neurons: sum(|z|) (default) or sum(relu(z)). */
  objective?: NeuronObjective;
  /** Method integrated_gradients: number of steps M (default 32). */
  igSteps?: number;
  /** Method integrated_gradients: baseline x' in input space [C, H, W] (default zeros). */
  igBaseline?: Float32Array;
  /** Wrappers over the method, applied in order after those its name stands for. */
  wrappers?: WrapperSpec[];
}

/** A method resolved: its base rule and every wrapper with its defaults filled in, innermost first. */
export interface ResolvedMethod {
  base: ReluRule;
  wrappers: WrapperSpec[];
}

/** Most base-rule evaluations per image (the product of the wrappers' steps and samples). */
export const MAX_PASSES = 65_536;
/** Most wrappers in one method. */
export const MAX_WRAPPERS = 8;

/**
 * Checks a method against an input of `size` values and fills in its defaults. Errors name the request
 * field under `prefix` (the API's `Attribution` message).
 */
export function resolveMethod(s: AttributionSettings, size: number, prefix = 'attribution'): ResolvedMethod {
  const named = (METHODS as Record<string, NamedMethod | undefined>)[s.method];
  if (!named) throw invalidArgument(`${prefix}.method: unknown attribution method '${String(s.method)}' (one of ${ATTRIBUTION_METHODS.join(', ')})`);
  const given = s.wrappers ?? [];
  if (given.length > MAX_WRAPPERS) throw invalidArgument(`${prefix}.wrappers has ${given.length} wrappers (at most ${MAX_WRAPPERS})`);
  const all = [
    ...named.wrappers(s, prefix),
    ...given.map((spec, i) => ({ spec, field: (p: string) => `${prefix}.wrappers[${i}].${spec.kind}.${p}` })),
  ];
  const wrappers = all.map(({ spec, field }) => definition(spec).resolve(spec, { size, field }));
  const passes = wrappers.reduce((n, w) => n * definition(w).passes(w), 1);
  if (passes > MAX_PASSES) {
    throw invalidArgument(`${prefix}.wrappers: ${passes} backward passes per image (the product of steps and samples) is too many (at most ${MAX_PASSES})`);
  }
  return { base: named.base, wrappers };
}

/** Bytes one output row of a method holds on this side while it runs. */
export function methodRowBytes(m: ResolvedMethod, size: number): number {
  return size * 4 + m.wrappers.reduce((n, w) => n + definition(w).rowBytes(w, size), 0);
}

/** Base-rule evaluations (engine calls) per image and target. */
export function methodPasses(m: ResolvedMethod): number {
  return m.wrappers.reduce((n, w) => n * definition(w).passes(w), 1);
}

/** The attributor of a resolved method for one target: the base rule on the engine, then the wrappers. */
export function methodAttributor(
  engine: Engine,
  model: EngineModel,
  target: AttributionTarget,
  m: ResolvedMethod,
  signal?: AbortSignal,
): Attributor {
  const rule = BASE_RULES[m.base];
  let a: Attributor = (input) => engine.attribute(model, input, target, rule, { signal });
  for (const w of m.wrappers) a = definition(w).wrap(a, w, signal);
  return a;
}

/** What determines a method's images, JSON-able (baselines by hash), for cache keys. */
export function methodKey(s: AttributionSettings, size: number): Record<string, unknown> {
  const m = resolveMethod(s, size);
  return { base: m.base, objective: s.objective ?? 'abs_sum', wrappers: m.wrappers.map((w) => definition(w).key(w)) };
}
