/**
 * A model's JSON sidecar, in the format of the shared models' `<model>.json`:
 *   input:  { name, shape: [null, C, H, W], layout, range: "RGB pixels / 255, ...", mean: [..], std: [..] }
 *   output: { name, shape: [null, classes], classes: [names] }
 * Optional explicit fields are honoured too: input.scale (number), input.fit ('resize' | 'pad'),
 * input.channel_order ('rgb' | 'bgr'). Everything else in the file (training logs, accuracy) is ignored.
 */
import { invalidArgument } from '../errors';
import type { ChannelOrderName, FitName, PreprocessSpec } from '../data/preprocessing';

export interface SidecarInfo {
  preprocessing: Partial<PreprocessSpec>;
  classNames?: string[];
  /** [C, H, W] when the sidecar gives input.shape. */
  inputShape?: [number, number, number];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function numberArray(v: unknown, field: string, where: string): number[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw invalidArgument(`sidecar ${where}: ${field} must be a non-empty list of numbers`);
  }
  return v as number[];
}

/** What input.range says about the pixel scale: "/ 255" or "[0,1]" → 1/255; "0..255" or "raw" → 1. */
function scaleFromRange(range: string): number | undefined {
  const r = range.toLowerCase();
  if (/\/\s*255/.test(r) || /\[\s*0\s*,\s*1\s*\]/.test(r) || /0\s*(\.\.|-|to)\s*1\b/.test(r)) return 1 / 255;
  if (/0\s*(\.\.|-|to)\s*255/.test(r) || /\braw\b/.test(r)) return 1;
  return undefined;
}

/** The sidecar's JSON object (invalidArgument naming the file when it is not one). */
function sidecarObject(text: string, where: string): Json {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`sidecar ${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalidArgument(`sidecar ${where} must be a JSON object`);
  return doc;
}

/**
 * Parses sidecar text.
 * @param where the sidecar's path as the user gave it (named in errors)
 */
export function parseSidecar(text: string, where: string): SidecarInfo {
  const doc = sidecarObject(text, where);
  const out: SidecarInfo = { preprocessing: {} };
  const input = doc.input;
  if (input !== undefined) {
    if (!isObject(input)) throw invalidArgument(`sidecar ${where}: input must be an object`);
    if (input.mean !== undefined) out.preprocessing.mean = numberArray(input.mean, 'input.mean', where);
    if (input.std !== undefined) {
      const std = numberArray(input.std, 'input.std', where);
      if (std.some((s) => s === 0)) throw invalidArgument(`sidecar ${where}: input.std must not contain 0`);
      out.preprocessing.std = std;
    }
    const range = typeof input.range === 'string' ? input.range : '';
    if (typeof input.scale === 'number') {
      if (!Number.isFinite(input.scale) || input.scale === 0) {
        throw invalidArgument(`sidecar ${where}: input.scale must be a non-zero number`);
      }
      out.preprocessing.scale = input.scale;
    } else if (range) {
      const scale = scaleFromRange(range);
      if (scale !== undefined) out.preprocessing.scale = scale;
    }
    if (input.fit !== undefined) {
      if (input.fit !== 'resize' && input.fit !== 'pad') throw invalidArgument(`sidecar ${where}: input.fit must be 'resize' or 'pad'`);
      out.preprocessing.fit = input.fit as FitName;
    } else if (/zero[- ]padded|padded by/i.test(range)) {
      out.preprocessing.fit = 'pad';
    }
    const order = input.channel_order ?? input.channelOrder;
    if (order !== undefined) {
      const o = String(order).toLowerCase();
      if (o !== 'rgb' && o !== 'bgr') throw invalidArgument(`sidecar ${where}: input.channel_order must be 'rgb' or 'bgr'`);
      out.preprocessing.channelOrder = o as ChannelOrderName;
    } else if (/\bbgr\b/i.test(range)) {
      out.preprocessing.channelOrder = 'bgr';
    }
    if (input.shape !== undefined) {
      const s = input.shape;
      const layout = typeof input.layout === 'string' ? input.layout.toUpperCase() : 'NCHW';
      if (!Array.isArray(s) || (s.length !== 4 && s.length !== 3)) {
        throw invalidArgument(`sidecar ${where}: input.shape must be [N, C, H, W] or [C, H, W]`);
      }
      const dims = (s.length === 4 ? s.slice(1) : s) as unknown[];
      if (!dims.every((d) => typeof d === 'number' && Number.isInteger(d) && d > 0)) {
        throw invalidArgument(`sidecar ${where}: input.shape ${JSON.stringify(s)} has a non-positive or unknown size`);
      }
      const [a, b, c] = dims as number[];
      out.inputShape = layout === 'NHWC' ? [c!, a!, b!] : [a!, b!, c!];
    }
  }
  const output = doc.output;
  if (output !== undefined) {
    if (!isObject(output)) throw invalidArgument(`sidecar ${where}: output must be an object`);
    if (output.classes !== undefined) {
      const c = output.classes;
      if (!Array.isArray(c) || !c.every((x) => typeof x === 'string')) {
        throw invalidArgument(`sidecar ${where}: output.classes must be a list of names`);
      }
      out.classNames = c as string[];
    }
  }
  return out;
}

/** Whether parsed JSON looks like a sidecar (for picking up `<model>.json` beside an ONNX file). */
export function looksLikeSidecar(text: string): boolean {
  try {
    const doc: unknown = JSON.parse(text);
    return isObject(doc) && (isObject(doc.input) || isObject(doc.output)) && !('modelTopology' in doc);
  } catch {
    return false;
  }
}

/**
 * What a sidecar records about how its model was trained (the shared models' sidecars carry
 * `training_log`, `test_accuracy` and an `origin` sentence). Fields it does not state are absent.
 */
export interface TrainingFacts {
  /** Epochs trained: the highest `epoch` in training_log (or the log's length when entries carry none). */
  epochs?: number;
  /** test_accuracy. */
  testAccuracy?: number;
  /** Training images, as the origin sentence states them ("... on the 50,000 ... training images"). */
  trainingImages?: number;
  /** The origin sentence itself. */
  origin?: string;
}

/**
 * Parses the training facts of sidecar text.
 * @param where the sidecar's path (named in errors)
 */
export function trainingFacts(text: string, where: string): TrainingFacts {
  const doc = sidecarObject(text, where);
  const out: TrainingFacts = {};
  if (doc.test_accuracy !== undefined) {
    if (typeof doc.test_accuracy !== 'number' || !(doc.test_accuracy >= 0 && doc.test_accuracy <= 1)) {
      throw invalidArgument(`sidecar ${where}: test_accuracy must be a number in [0, 1]`);
    }
    out.testAccuracy = doc.test_accuracy;
  }
  if (doc.training_log !== undefined) {
    if (!Array.isArray(doc.training_log)) throw invalidArgument(`sidecar ${where}: training_log must be a list`);
    const epochs = doc.training_log.map((e: unknown) => (isObject(e) && typeof e.epoch === 'number' ? e.epoch : undefined));
    out.epochs = epochs.every((e) => e !== undefined) && epochs.length > 0 ? Math.max(...(epochs as number[])) : doc.training_log.length;
  }
  if (typeof doc.origin === 'string') {
    out.origin = doc.origin;
    const m = /(\d[\d,]*)\s+(?:[\w-]+\s+){0,4}training images/i.exec(doc.origin);
    if (m) out.trainingImages = Number(m[1]!.replace(/,/g, ''));
  }
  return out;
}
