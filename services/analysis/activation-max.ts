/**
 * Activation maximisation (SPEC §1 item 3): gradient ascent on the input to raise class i's logit,
 * starting from an image (the class mean), each step moving `stepSize` input-space units along the
 * gradient divided by its root mean square, clamped to the valid input range (the input-space images of
 * raw pixels 0 and 255, per channel), stopping early once softmax(class i) ≥ `stopProbability`.
 */
import type { Engine, EngineModel } from '../engines/engine';
import { invalidArgument, throwIfAborted } from '../errors';
import { affineMap } from '../data/preprocess';
import type { PreprocessSpec } from '../data/preprocessing';
import { classAverages, type ClassAverage, type ClassAveragesArgs } from './averages';

export const ACTIVATION_MAX_DEFAULTS = { steps: 100, stepSize: 0.01, stopProbability: 0.99 } as const;

/** Per input channel, the lowest and highest input-space value a real image can take. */
export interface InputRange {
  low: number[];
  high: number[];
}

export function inputRange(spec: PreprocessSpec, channels: number): InputRange {
  const { gain, offset } = affineMap(spec, channels);
  const low: number[] = [];
  const high: number[] = [];
  for (let c = 0; c < channels; c++) {
    const a = offset[c]; // raw 0
    const b = 255 * gain[c] + offset[c]; // raw 255
    low.push(Math.min(a, b));
    high.push(Math.max(a, b));
  }
  return { low, high };
}

export interface ActivationMaxOptions {
  engine: Engine;
  model: EngineModel;
  /** [C, H, W] in input space; it is clamped to the range first. */
  start: Float32Array;
  classIndex: number;
  range: InputRange;
  steps?: number;
  stepSize?: number;
  stopProbability?: number;
  signal?: AbortSignal;
}

export interface ActivationMaxResult {
  image: Float32Array;
  /** Gradient steps taken. */
  steps: number;
  /** softmax(class) of the start image (after clamping) and of the result. */
  startProbability: number;
  probability: number;
  logit: number;
  /** The model's class for the result. */
  predicted: number;
}

export function softmaxAt(logits: Float32Array, offset: number, n: number, index: number): number {
  let max = -Infinity;
  for (let k = 0; k < n; k++) max = Math.max(max, logits[offset + k]);
  let sum = 0;
  for (let k = 0; k < n; k++) sum += Math.exp(logits[offset + k] - max);
  return Math.exp(logits[offset + index] - max) / sum;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let k = 1; k < a.length; k++) if (a[k] > a[best]) best = k;
  return best;
}

function clampToRange(x: Float32Array, range: InputRange, plane: number): void {
  for (let c = 0; c < range.low.length; c++) {
    const lo = range.low[c];
    const hi = range.high[c];
    for (let i = c * plane; i < (c + 1) * plane; i++) x[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
  }
}

function check(opts: ActivationMaxOptions): { steps: number; stepSize: number; stop: number; plane: number } {
  const { model, start, classIndex, range } = opts;
  const shape = model.graph.input.shape;
  const size = shape.reduce((a, b) => a * b, 1);
  if (start.length !== size) throw invalidArgument(`start image has ${start.length} values, the model takes ${shape.join('×')}`);
  if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= model.classes) {
    throw invalidArgument(`class ${classIndex} does not exist (the model has ${model.classes} classes)`);
  }
  if (range.low.length !== shape[0] || range.high.length !== shape[0]) {
    throw invalidArgument(`input range has ${range.low.length} channels, the model's input has ${shape[0]}`);
  }
  const steps = opts.steps ?? ACTIVATION_MAX_DEFAULTS.steps;
  const stepSize = opts.stepSize ?? ACTIVATION_MAX_DEFAULTS.stepSize;
  const stop = opts.stopProbability ?? ACTIVATION_MAX_DEFAULTS.stopProbability;
  if (!Number.isInteger(steps) || steps < 0 || steps > 100_000) throw invalidArgument(`steps must be 0..100000, got ${steps}`);
  if (!(stepSize > 0) || !Number.isFinite(stepSize)) throw invalidArgument(`step size must be a positive number, got ${stepSize}`);
  if (!(stop > 0 && stop <= 1)) throw invalidArgument(`stop probability must be in (0, 1], got ${stop}`);
  return { steps, stepSize, stop, plane: size / shape[0] };
}

export async function activationMaximisation(opts: ActivationMaxOptions): Promise<ActivationMaxResult> {
  const { engine, model, classIndex, range, signal } = opts;
  const { steps, stepSize, stop, plane } = check(opts);
  const x = opts.start.slice();
  clampToRange(x, range, plane);
  let taken = 0;
  let startProbability = NaN;
  for (;;) {
    throwIfAborted(signal);
    const logits = await engine.forward(model, x, 1, { signal });
    const p = softmaxAt(logits, 0, model.classes, classIndex);
    if (taken === 0) startProbability = p;
    if (p >= stop || taken >= steps) {
      return { image: x, steps: taken, startProbability, probability: p, logit: logits[classIndex], predicted: argmax(logits) };
    }
    const g = await engine.attribute(model, x, { kind: 'logit', classes: [classIndex] }, 'gradient', { signal });
    let ss = 0;
    for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
    const rms = Math.sqrt(ss / g.length);
    if (rms === 0 || !Number.isFinite(rms)) {
      // A flat logit: no direction to climb. Report where we are.
      return { image: x, steps: taken, startProbability, probability: p, logit: logits[classIndex], predicted: argmax(logits) };
    }
    const k = stepSize / rms;
    for (let i = 0; i < x.length; i++) x[i] += k * g[i];
    clampToRange(x, range, plane);
    taken++;
  }
}

/** Class averages of kind "activation maximisation": the class mean, then gradient ascent from it. */
export interface ActivationMaxAveragesArgs extends Omit<ClassAveragesArgs, 'kind'> {
  engine: Engine;
  model: EngineModel;
  steps?: number;
  stepSize?: number;
  stopProbability?: number;
}

export interface ActivationMaxAverage extends ClassAverage {
  /** Gradient steps taken. */
  steps: number;
  /** softmax(class) of the class mean the ascent started from. */
  startProbability: number;
}

/**
 * The mean of each class (`classAverages`, kind 'mean', rescaled unless told otherwise) is the start of
 * an ascent on the class logit; `image`, `averageConfidence` and `predictedClass` describe the result,
 * `imagesUsed` and `meanConfidence` the mean it started from.
 */
export async function* activationMaxAverages(args: ActivationMaxAveragesArgs): AsyncGenerator<ActivationMaxAverage> {
  const { engine, model, steps, stepSize, stopProbability, signal } = args;
  const range = inputRange(args.preprocessing, args.inputShape[0]);
  for await (const mean of classAverages({ ...args, kind: 'mean' })) {
    const r = await activationMaximisation({ engine, model, start: mean.image, classIndex: mean.classIndex, range, steps, stepSize, stopProbability, signal });
    yield {
      ...mean,
      image: r.image,
      averageConfidence: r.probability,
      predictedClass: r.predicted,
      steps: r.steps,
      startProbability: r.startProbability,
    };
  }
}
