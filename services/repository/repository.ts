/**
 * The model repository: a file (JSON or YAML) naming the models and data sets a server loads at start,
 * so a restarted pod comes back with them (in Kubernetes, a ConfigMap mounted as a file). Parsing is
 * pure and strict: every entry is checked, and an error names the file and the entry.
 *
 *   models:
 *     - name: cnn
 *       path: mnist_cnn.onnx          # relative to --model-root
 *       sidecar: mnist_cnn.json       # optional; default <model>.json beside an ONNX file
 *       format: onnx                  # optional: onnx | tfjs-layers
 *       preprocessing: { scale: 0.00392156862745098, mean: [0.1307], std: [0.3081] }   # optional
 *       class_names: [zero, one, ...] # optional
 *   datasets:
 *     - name: mnist
 *       path: builtin:mnist           # or a folder relative to --data-root
 *       format: idx                   # optional
 */
import { invalidArgument } from '../errors';
import type { DatasetFormatName } from '../data/dataset';
import type { PreprocessSpec } from '../data/preprocessing';
import type { RegisterDatasetArgs } from '../data/registry';
import type { ModelFormatName } from '../models/model';
import type { LoadFromPathRequest } from '../models/registry';

/** A model entry: LoadModel's arguments, and where the entry is in the file, e.g. `models[1] ('cnn')`. */
export type RepositoryModel = LoadFromPathRequest & { where: string };

/** A data-set entry: RegisterDataset's arguments, and where the entry is in the file. */
export type RepositoryDataset = RegisterDatasetArgs & { where: string };

export interface Repository {
  file: string;
  models: RepositoryModel[];
  datasets: RepositoryDataset[];
}

type Obj = Record<string, unknown>;

const MODEL_KEYS = ['name', 'path', 'sidecar', 'format', 'preprocessing', 'class_names', 'classNames'];
const DATASET_KEYS = ['name', 'path', 'format', 'class_names', 'classNames', 'train_prefix', 'test_prefix'];
const PREPROCESSING_KEYS = ['scale', 'mean', 'std', 'channel_order', 'channelOrder', 'fit'];
const MODEL_FORMATS: readonly string[] = ['onnx', 'tfjs-layers'];
const DATASET_FORMATS: readonly string[] = ['idx', 'cifar10', 'image-folder'];

/** Parses the text of a repository file (YAML when named .yaml/.yml, JSON otherwise). */
export function parseRepository(text: string, file: string): Repository {
  let doc: unknown;
  const parseYaml = /\.ya?ml$/i.test(file) ? yamlParser(file) : undefined;
  try {
    doc = parseYaml ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw invalidArgument(`repository ${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  if (doc === null || doc === undefined) doc = {};
  const top = object(doc, `repository ${file}`);
  unknownKeys(top, ['models', 'datasets'], `repository ${file}`);
  const models = list(top.models, `repository ${file}: models`).map((e, i) => modelEntry(e, `repository ${file}: models[${i}]`));
  const datasets = list(top.datasets, `repository ${file}: datasets`).map((e, i) => datasetEntry(e, `repository ${file}: datasets[${i}]`));
  duplicates(models, file, 'models');
  duplicates(datasets, file, 'datasets');
  return { file, models, datasets };
}

/** The `yaml` package's parser, loaded only for YAML repositories (an install without it can use JSON). */
function yamlParser(file: string): (text: string) => unknown {
  let yaml: { parse(t: string): unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    yaml = require('yaml') as { parse(t: string): unknown };
  } catch {
    throw invalidArgument(`repository ${file}: YAML needs the 'yaml' package, which this installation lacks; write the repository as JSON (a .json file)`);
  }
  return (text) => yaml.parse(text);
}

function modelEntry(raw: unknown, at: string): RepositoryModel {
  const e = object(raw, at);
  const name = str(e.name, `${at}.name`);
  const where = `${at} ('${name}')`;
  unknownKeys(e, MODEL_KEYS, where);
  const format = optStr(e.format, `${where}.format`);
  if (format !== undefined && !MODEL_FORMATS.includes(format)) throw invalidArgument(`${where}.format: '${format}' is not one of ${MODEL_FORMATS.join(', ')}`);
  return {
    where,
    name,
    path: str(e.path, `${where}.path`),
    sidecarPath: optStr(e.sidecar, `${where}.sidecar`),
    format: format as ModelFormatName | undefined,
    preprocessing: e.preprocessing === undefined ? undefined : preprocessing(e.preprocessing, `${where}.preprocessing`),
    classNames: strings(e.class_names ?? e.classNames, `${where}.class_names`),
  };
}

function datasetEntry(raw: unknown, at: string): RepositoryDataset {
  const e = object(raw, at);
  const name = str(e.name, `${at}.name`);
  const where = `${at} ('${name}')`;
  unknownKeys(e, DATASET_KEYS, where);
  const format = optStr(e.format, `${where}.format`);
  if (format !== undefined && !DATASET_FORMATS.includes(format)) throw invalidArgument(`${where}.format: '${format}' is not one of ${DATASET_FORMATS.join(', ')}`);
  return {
    where,
    name,
    path: str(e.path, `${where}.path`),
    format: format as DatasetFormatName | undefined,
    classNames: strings(e.class_names ?? e.classNames, `${where}.class_names`),
    trainPrefix: optStr(e.train_prefix, `${where}.train_prefix`),
    testPrefix: optStr(e.test_prefix, `${where}.test_prefix`),
  };
}

function preprocessing(raw: unknown, at: string): Partial<PreprocessSpec> {
  const p = object(raw, at);
  unknownKeys(p, PREPROCESSING_KEYS, at);
  const out: Partial<PreprocessSpec> = {};
  if (p.scale !== undefined) out.scale = num(p.scale, `${at}.scale`);
  if (p.mean !== undefined) out.mean = nums(p.mean, `${at}.mean`);
  if (p.std !== undefined) out.std = nums(p.std, `${at}.std`);
  const order = optStr(p.channel_order ?? p.channelOrder, `${at}.channel_order`);
  if (order !== undefined) {
    if (order !== 'rgb' && order !== 'bgr') throw invalidArgument(`${at}.channel_order: '${order}' is not rgb or bgr`);
    out.channelOrder = order;
  }
  const fit = optStr(p.fit, `${at}.fit`);
  if (fit !== undefined) {
    if (fit !== 'resize' && fit !== 'pad') throw invalidArgument(`${at}.fit: '${fit}' is not resize or pad`);
    out.fit = fit;
  }
  return out;
}

function object(v: unknown, at: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidArgument(`${at}: expected a mapping of keys to values`);
  return v as Obj;
}

function list(v: unknown, at: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalidArgument(`${at}: expected a list`);
  return v;
}

function unknownKeys(o: Obj, known: readonly string[], at: string): void {
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length > 0) throw invalidArgument(`${at}: unknown key${extra.length === 1 ? '' : 's'} ${extra.map((k) => `'${k}'`).join(', ')} (known: ${known.join(', ')})`);
}

function str(v: unknown, at: string): string {
  if (typeof v !== 'string' || v.trim() === '') throw invalidArgument(`${at}: expected a non-empty string`);
  return v.trim();
}

function optStr(v: unknown, at: string): string | undefined {
  return v === undefined || v === null ? undefined : str(v, at);
}

function num(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalidArgument(`${at}: expected a number`);
  return v;
}

function nums(v: unknown, at: string): number[] {
  if (!Array.isArray(v) || v.length === 0) throw invalidArgument(`${at}: expected a list of numbers`);
  return v.map((x, i) => num(x, `${at}[${i}]`));
}

function strings(v: unknown, at: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw invalidArgument(`${at}: expected a list of strings`);
  return v as string[];
}

function duplicates(entries: Array<{ name: string; where: string }>, file: string, kind: string): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw invalidArgument(`repository ${file}: ${e.where}: the name '${e.name}' is used twice in ${kind}`);
    seen.add(e.name);
  }
}
