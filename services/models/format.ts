/**
 * Telling model files apart: a tfjs model is JSON (a `model.json` with weight shards beside it, or a
 * folder holding one); anything else is taken as an ONNX protobuf (the importer rejects what is not).
 */
import { invalidArgument } from '../errors';
import { readLayersModelJson } from '../graph/tfjs-model-json';
import type { ModelFormatName } from './model';

export interface TfjsManifest {
  /** Shard paths relative to the model.json folder, in manifest order. */
  shards: string[];
}

/**
 * The first non-blank byte is '{' or '[' (JSON: a model.json, or a weights manifest the tfjs importer names
 * and refuses) — ONNX files start with a protobuf tag, never with either.
 */
export function looksLikeJson(head: Uint8Array): boolean {
  for (const b of head) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0xef || b === 0xbb || b === 0xbf) continue;
    return b === 0x7b || b === 0x5b;
  }
  return false;
}

/**
 * Parses a tfjs model.json enough to find its weight shards; what is not a LayersModel (a graph model, a
 * weights-only manifest, other JSON) is refused here, before any shard is read (graph/tfjs-model-json.ts).
 */
export function parseTfjsManifest(text: string, where: string): TfjsManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  const manifest = readLayersModelJson(doc, where).json.weightsManifest ?? [];
  if (!Array.isArray(manifest)) throw invalidArgument(`${where}: weightsManifest must be a list`);
  const shards: string[] = [];
  for (const group of manifest) {
    const paths = (group as { paths?: unknown }).paths;
    if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string')) {
      throw invalidArgument(`${where}: every weightsManifest entry needs a list of paths`);
    }
    shards.push(...(paths as string[]));
  }
  return { shards };
}

/** The format a file holds, checked against the one requested (if any). */
export function decideFormat(detected: ModelFormatName, requested: ModelFormatName | undefined, where: string): ModelFormatName {
  if (requested && requested !== detected) {
    const name = (f: ModelFormatName): string => (f === 'onnx' ? 'an ONNX model' : 'a tfjs LayersModel (model.json)');
    throw invalidArgument(`${where} is ${name(detected)}, but the request says it is ${name(requested)}`);
  }
  return detected;
}
