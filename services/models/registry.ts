/**
 * The models the service knows, by name.
 *
 * - Registrations (name → where the model came from, and how to feed it) live until `unload`.
 * - The loaded graphs live in an LRU cache bounded by bytes (model file size + weights). A model
 *   evicted from the cache is released from the engines (`onEvict`); one loaded from the model root
 *   is read again on its next `get` (a cache miss), an uploaded one is forgotten (upload it again).
 * - Paths are confined to the model root (see paths.ts). A failed load leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LRUCache } from 'lru-cache';
import { IntrospectError, alreadyExists, invalidArgument, notFound, resourceExhausted } from '../errors';
import { defaultPreprocessing, type PreprocessSpec } from '../data/preprocessing';
import type { EngineModel } from '../engines/engine';
import type { IrGraph } from '../graph/ir';
import { convLayers, denseLayers, opNames, parameterCount } from '../graph/layers';
import { importOnnx } from '../graph/onnx-import';
import { loadTfjsLayersFromDir } from '../graph/tfjs-import';
import { decideFormat, looksLikeJson, parseTfjsManifest } from './format';
import { describeModel, type ModelDescription } from './info';
import type { LoadedModel, ModelFormatName } from './model';
import { PathConfinement, type ConfinedPath } from './paths';
import { looksLikeSidecar, parseSidecar, type SidecarInfo } from './sidecar';

/** Default bound on the elements of one input sample: 16,777,216 (1 × 4096 × 4096, or 3 × 2364 × 2364). */
export const DEFAULT_MAX_INPUT_ELEMENTS = 4096 * 4096;

export interface ModelRegistryOptions {
  modelRoot: string;
  /** Bound of the cache: the sum over cached models of file size + weight bytes. */
  cacheBytes: number;
  maxUploadBytes: number;
  /** Most elements (C × H × W) one sample of a model's input may have; larger inputs are refused at load. */
  maxInputElements?: number;
  /**
   * A model left the cache (evicted, or unloaded) and no other cached model has the same content:
   * release it from the engines. Errors are the callback's to handle.
   */
  onEvict?: (model: LoadedModel, reason: 'evicted' | 'unloaded') => void;
  /** Every `get`: whether the model was in the cache. */
  onLookup?: (hit: boolean) => void;
  /** The number of models in the cache changed. */
  onResidentChange?: (resident: number) => void;
}

/** Settings given with a load; each wins over the sidecar. */
export interface ModelOverrides {
  preprocessing?: Partial<PreprocessSpec>;
  classNames?: string[];
}

export interface LoadFromPathRequest extends ModelOverrides {
  name: string;
  /** Relative to the model root: an ONNX file, a tfjs model.json, or a folder holding model.json. */
  path: string;
  format?: ModelFormatName;
  /** Relative to the model root. Unset: `<model>.json` beside an ONNX file is used when it is a sidecar. */
  sidecarPath?: string;
}

export interface LoadFromBytesRequest extends ModelOverrides {
  name: string;
  bytes: Uint8Array;
  /** Uploads are ONNX only. */
  format?: ModelFormatName;
}

type Source =
  | { kind: 'path'; request: LoadFromPathRequest }
  | { kind: 'upload' };

interface Registration {
  name: string;
  source: Source;
  description: ModelDescription;
}

export interface RegistryStats {
  registered: number;
  resident: number;
  residentBytes: number;
  cacheBytes: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** Bytes a model holds in memory, as the cache counts them. */
export function modelFootprint(m: LoadedModel): number {
  let bytes = m.sizeBytes;
  for (const w of m.engineModel.graph.weights.values()) bytes += w.data.byteLength;
  return bytes;
}

export function validateModelName(name: string): void {
  if (!NAME.test(name)) {
    throw invalidArgument(
      `name '${name}' is not a valid model name: use 1-128 letters, digits and . _ : @ -, starting with a letter or digit`,
    );
  }
}

export class ModelRegistry {
  readonly modelRoot: string;
  readonly maxUploadBytes: number;
  readonly cacheBytes: number;
  private readonly paths: PathConfinement;
  private readonly entries = new Map<string, Registration>();
  private readonly pending = new Set<string>();
  private readonly reloading = new Map<string, Promise<LoadedModel>>();
  /** Uploaded models the cache evicted, for a helpful message on the next `get`. */
  private readonly evictedUploads = new Set<string>();
  private readonly cache: LRUCache<string, LoadedModel>;

  constructor(private readonly opts: ModelRegistryOptions) {
    if (!(opts.cacheBytes > 0)) throw new Error('ModelRegistry: cacheBytes must be positive');
    this.modelRoot = opts.modelRoot;
    this.maxUploadBytes = opts.maxUploadBytes;
    this.cacheBytes = opts.cacheBytes;
    this.paths = new PathConfinement(opts.modelRoot, 'model root');
    this.cache = new LRUCache<string, LoadedModel>({
      maxSize: opts.cacheBytes,
      sizeCalculation: (m) => Math.max(1, modelFootprint(m)),
      disposeAfter: (model, name, reason) => this.disposed(model, name, reason),
    });
  }

  /** Throws `invalid-argument` for a bad name and `already-exists` for a taken one. */
  assertNameFree(name: string): void {
    validateModelName(name);
    if (this.entries.has(name) || this.pending.has(name)) {
      throw alreadyExists(`a model named '${name}' is already loaded (unload it first or pick another name)`);
    }
  }

  async loadFromPath(req: LoadFromPathRequest): Promise<LoadedModel> {
    return this.reserved(req.name, async () => {
      const model = await this.readFromPath(req);
      return this.admit(model, { kind: 'path', request: req });
    });
  }

  async loadFromBytes(req: LoadFromBytesRequest): Promise<LoadedModel> {
    return this.reserved(req.name, async () => {
      if (req.bytes.byteLength > this.maxUploadBytes) {
        throw resourceExhausted(
          `the upload is ${req.bytes.byteLength} bytes, more than the server's limit of ${this.maxUploadBytes} bytes`,
        );
      }
      if (req.format && req.format !== 'onnx') {
        throw invalidArgument('format: uploads take ONNX models only; load tfjs models from the model root with LoadModel');
      }
      if (looksLikeJson(req.bytes.subarray(0, 64))) {
        throw invalidArgument('the uploaded file is JSON, not an ONNX model (uploads take ONNX models only)');
      }
      const graph = importGraph(() => importOnnx(req.bytes), 'the uploaded file');
      const model = this.build(req.name, graph, {
        format: 'onnx',
        sha256: sha256(req.bytes),
        sizeBytes: req.bytes.byteLength,
        source: 'upload',
        sidecar: { preprocessing: {} },
        overrides: req,
      });
      return this.admit(model, { kind: 'upload' });
    });
  }

  /** The loaded model; reads it again when the cache evicted it. Unknown → `not-found`. */
  async get(name: string): Promise<LoadedModel> {
    const reg = this.entries.get(name);
    if (!reg) {
      if (this.evictedUploads.has(name)) {
        throw notFound(
          `model '${name}' was uploaded and later evicted from the model cache (${this.cacheBytes} bytes); upload it again`,
        );
      }
      throw notFound(`model '${name}' is not loaded`);
    }
    const cached = this.cache.get(name);
    if (cached) {
      this.opts.onLookup?.(true);
      return cached;
    }
    this.opts.onLookup?.(false);
    if (reg.source.kind !== 'path') throw notFound(`model '${name}' is not loaded`);
    let reload = this.reloading.get(name);
    if (!reload) {
      const request = reg.source.request;
      reload = this.readFromPath(request)
        .then((model) => {
          // Unloaded (or replaced) while reading: do not bring it back.
          if (this.entries.get(name) !== reg) throw notFound(`model '${name}' was unloaded`);
          this.ensureFits(model);
          reg.description = describeModel(model);
          this.cache.set(name, model);
          this.opts.onResidentChange?.(this.cache.size);
          return model;
        })
        .catch((err: unknown) => {
          if (err instanceof IntrospectError && err.kind === 'not-found' && this.entries.get(name) !== reg) throw err;
          const why = err instanceof Error ? err.message : String(err);
          throw new IntrospectError(
            'failed-precondition',
            `model '${name}' was evicted from the model cache and reading it again from '${request.path}' failed: ${why}`,
          );
        })
        .finally(() => this.reloading.delete(name));
      this.reloading.set(name, reload);
    }
    return reload;
  }

  /** The description of a registered model (no reload needed). Unknown → `not-found`. */
  describe(name: string): ModelDescription {
    const reg = this.entries.get(name);
    if (!reg) throw notFound(`model '${name}' is not loaded`);
    return reg.description;
  }

  list(): ModelDescription[] {
    return [...this.entries.values()].map((r) => r.description).sort((a, b) => a.name.localeCompare(b.name));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Forgets a model and releases it from the engines. Unknown → `not-found`. */
  unload(name: string): void {
    if (!this.entries.has(name)) {
      this.evictedUploads.delete(name);
      throw notFound(`model '${name}' is not loaded`);
    }
    this.entries.delete(name);
    this.cache.delete(name); // → disposed(…, 'delete') releases it
    this.opts.onResidentChange?.(this.cache.size);
  }

  stats(): RegistryStats {
    return {
      registered: this.entries.size,
      resident: this.cache.size,
      residentBytes: this.cache.calculatedSize,
      cacheBytes: this.cacheBytes,
    };
  }

  /** Unloads everything (shutdown). */
  clear(): void {
    for (const name of [...this.entries.keys()]) this.unload(name);
  }

  // ---------------------------------------------------------------------------------------------

  private async reserved(name: string, load: () => Promise<LoadedModel>): Promise<LoadedModel> {
    this.assertNameFree(name);
    this.pending.add(name);
    try {
      return await load();
    } finally {
      this.pending.delete(name);
    }
  }

  private ensureFits(model: LoadedModel): void {
    const bytes = modelFootprint(model);
    if (bytes > this.cacheBytes) {
      throw resourceExhausted(
        `model '${model.name}' needs ${bytes} bytes (file + weights), more than the whole model cache (${this.cacheBytes} bytes; see --cache-bytes)`,
      );
    }
  }

  private admit(model: LoadedModel, source: Source): LoadedModel {
    this.ensureFits(model);
    this.evictedUploads.delete(model.name);
    this.entries.set(model.name, { name: model.name, source, description: describeModel(model) });
    this.cache.set(model.name, model);
    this.opts.onResidentChange?.(this.cache.size);
    return model;
  }

  private disposed(model: LoadedModel, name: string, reason: LRUCache.DisposeReason): void {
    if (reason === 'evict') {
      const reg = this.entries.get(name);
      if (reg && reg.source.kind === 'upload') {
        this.entries.delete(name);
        this.evictedUploads.add(name);
      }
      this.opts.onResidentChange?.(this.cache.size);
    }
    if (reason !== 'evict' && reason !== 'delete') return;
    // Another cached model with the same content keeps the engines' copy alive.
    for (const other of this.cache.values()) {
      if (other !== model && other.engineModel.id === model.engineModel.id) return;
    }
    this.opts.onEvict?.(model, reason === 'evict' ? 'evicted' : 'unloaded');
  }

  private async readFromPath(req: LoadFromPathRequest): Promise<LoadedModel> {
    const target = await this.paths.resolve(req.path, 'path');
    let file = target;
    if (target.isDirectory) {
      file = await this.paths.resolveBeside(target, 'model.json', `'${req.path}/model.json'`).catch((err: unknown) => {
        if (err instanceof IntrospectError && err.kind === 'not-found') {
          throw invalidArgument(`path '${req.path}' is a folder without a model.json (give the model file itself)`);
        }
        throw err;
      });
    }
    const head = await readHead(file.real, 64);
    const detected: ModelFormatName = looksLikeJson(head) ? 'tfjs-layers' : 'onnx';
    const format = decideFormat(detected, req.format, `'${req.path}'`);
    if (format === 'onnx') {
      const bytes = await fs.promises.readFile(file.real);
      const graph = importGraph(() => importOnnx(bytes), `'${req.path}'`);
      const sidecar = await this.sidecarFor(req, file);
      return this.build(req.name, graph, {
        format,
        sha256: sha256(bytes),
        sizeBytes: bytes.byteLength,
        source: file.relative,
        sidecar,
        overrides: req,
      });
    }
    // tfjs: model.json and its shards, all inside the root; the hash covers all of them.
    const text = await fs.promises.readFile(file.real, 'utf8');
    const manifest = parseTfjsManifest(text, `'${req.path}'`);
    const hash = createHash('sha256').update(text);
    let size = Buffer.byteLength(text);
    for (const shard of manifest.shards) {
      const p = await this.paths.resolveBeside(file, shard, `weight shard '${shard}' of '${req.path}'`);
      const data = await fs.promises.readFile(p.real);
      hash.update(data);
      size += data.byteLength;
    }
    const graph = await importGraphAsync(() => loadTfjsLayersFromDir(file.real), `'${req.path}'`, [
      [file.real, req.path],
      [path.dirname(file.real) + path.sep, ''],
    ]);
    const sidecar = req.sidecarPath ? await this.readSidecar(req.sidecarPath) : { preprocessing: {} };
    return this.build(req.name, graph, {
      format,
      sha256: hash.digest('hex'),
      sizeBytes: size,
      source: file.relative,
      sidecar,
      overrides: req,
    });
  }

  private async readSidecar(given: string): Promise<SidecarInfo> {
    const p = await this.paths.resolve(given, 'sidecar_path');
    if (p.isDirectory) throw invalidArgument(`sidecar_path '${given}' is a folder, not a JSON file`);
    return parseSidecar(await fs.promises.readFile(p.real, 'utf8'), `'${given}'`);
  }

  /** The explicit sidecar, or `<model>.json` beside an ONNX file when it is one. */
  private async sidecarFor(req: LoadFromPathRequest, file: ConfinedPath): Promise<SidecarInfo> {
    if (req.sidecarPath) return this.readSidecar(req.sidecarPath);
    const beside = path.join(path.dirname(file.relative), path.basename(file.relative, path.extname(file.relative)) + '.json');
    try {
      const p = await this.paths.resolve(beside, 'sidecar');
      if (p.isDirectory) return { preprocessing: {} };
      const text = await fs.promises.readFile(p.real, 'utf8');
      return looksLikeSidecar(text) ? parseSidecar(text, `'${p.relative}'`) : { preprocessing: {} };
    } catch (err) {
      // No sidecar beside the model (or one leading outside the root): load without it.
      if (err instanceof IntrospectError && (err.kind === 'not-found' || err.kind === 'permission-denied')) {
        return { preprocessing: {} };
      }
      throw err;
    }
  }

  private build(
    name: string,
    graph: IrGraph,
    meta: {
      format: ModelFormatName;
      sha256: string;
      sizeBytes: number;
      source: string;
      sidecar: SidecarInfo;
      overrides: ModelOverrides;
    },
  ): LoadedModel {
    const shape = graph.input.shape;
    if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
      throw invalidArgument(
        `model input '${graph.input.name}' has per-sample shape [${shape.join(', ')}]; image models with input [N, C, H, W] are supported`,
      );
    }
    const inputShape: [number, number, number] = [shape[0]!, shape[1]!, shape[2]!];
    const elements = inputShape[0] * inputShape[1] * inputShape[2];
    const maxElements = this.opts.maxInputElements ?? DEFAULT_MAX_INPUT_ELEMENTS;
    if (elements > maxElements) {
      throw resourceExhausted(
        `model input '${graph.input.name}' has per-sample shape [${inputShape.join(', ')}] = ${elements} elements, over the server's limit of ${maxElements} elements per sample (--max-input-elements)`,
      );
    }
    const sc = meta.sidecar.inputShape;
    if (sc && sc.some((d, i) => d !== inputShape[i])) {
      throw invalidArgument(
        `the sidecar's input shape [${sc.join(', ')}] does not match the model's input [${inputShape.join(', ')}] (C, H, W)`,
      );
    }
    const outShape = graph.shapes.get(graph.output) ?? [];
    const classes = outShape.reduce((a, b) => a * b, 1);
    if (outShape.length === 0 || !(classes > 0)) {
      throw invalidArgument(`model output '${graph.output}' has no known size`);
    }
    const channels = inputShape[0];
    const preprocessing = mergePreprocessing(channels, meta.sidecar.preprocessing, meta.overrides.preprocessing);
    const given = meta.overrides.classNames?.length ? meta.overrides.classNames : meta.sidecar.classNames;
    let classNames: string[];
    if (given && given.length > 0) {
      if (given.length !== classes) {
        throw invalidArgument(`class_names has ${given.length} names but the model has ${classes} outputs`);
      }
      classNames = [...given];
    } else {
      classNames = Array.from({ length: classes }, (_, i) => String(i));
    }
    const engineModel: EngineModel = { id: meta.sha256, graph, convLayers: convLayers(graph), classes };
    return {
      name,
      format: meta.format,
      sha256: meta.sha256,
      sizeBytes: meta.sizeBytes,
      source: meta.source,
      engineModel,
      denseLayers: denseLayers(graph),
      inputShape,
      preprocessing,
      classNames,
      parameters: parameterCount(graph),
      ops: opNames(graph),
    };
  }
}

/** Defaults ← sidecar ← request. Per-channel lists of length 1 broadcast to every channel. */
export function mergePreprocessing(
  channels: number,
  sidecar: Partial<PreprocessSpec>,
  request: Partial<PreprocessSpec> | undefined,
): PreprocessSpec {
  const spec: PreprocessSpec = { ...defaultPreprocessing(channels), ...stripUndefined(sidecar), ...stripUndefined(request ?? {}) };
  const perChannel = (values: number[], field: 'mean' | 'std'): number[] => {
    if (values.length === 1 && channels > 1) return new Array<number>(channels).fill(values[0]!);
    if (values.length !== channels) {
      throw invalidArgument(
        `preprocessing.${field} has ${values.length} values but the model takes ${channels} input channel${channels === 1 ? '' : 's'}`,
      );
    }
    return [...values];
  };
  spec.mean = perChannel(spec.mean, 'mean');
  spec.std = perChannel(spec.std, 'std');
  if (spec.std.some((s) => s === 0 || !Number.isFinite(s))) throw invalidArgument('preprocessing.std must be finite and non-zero');
  if (spec.mean.some((m) => !Number.isFinite(m))) throw invalidArgument('preprocessing.mean must be finite');
  if (!Number.isFinite(spec.scale) || spec.scale === 0) throw invalidArgument('preprocessing.scale must be finite and non-zero');
  return spec;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function readHead(file: string, n: number): Promise<Uint8Array> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Importer errors that are not IntrospectErrors mean an unusable file: invalid-argument naming it. */
function importGraph(run: () => IrGraph, where: string): IrGraph {
  try {
    return run();
  } catch (err) {
    throw asModelError(err, where);
  }
}

/**
 * @param redact pairs [server path, what to show instead]: messages must not reveal where the model
 *   root is on the server.
 */
async function importGraphAsync(run: () => Promise<IrGraph>, where: string, redact: Array<[string, string]>): Promise<IrGraph> {
  try {
    return await run();
  } catch (err) {
    throw asModelError(err, where, redact);
  }
}

function asModelError(err: unknown, where: string, redact: Array<[string, string]> = []): IntrospectError {
  const clean = (m: string): string => redact.reduce((acc, [from, to]) => acc.split(from).join(to), m);
  if (err instanceof IntrospectError) {
    const message = clean(err.message);
    return new IntrospectError(err.kind, message.includes(where.replace(/'/g, '')) ? message : `${where}: ${message}`);
  }
  const why = clean(err instanceof Error ? err.message : String(err));
  return invalidArgument(`${where} is not a usable model: ${why}`);
}
