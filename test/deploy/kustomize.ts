/**
 * A small kustomize subset, enough to render deploy/k8s without the kustomize binary:
 *   resources (files and directories with a kustomization.yaml), patches (strategic-merge patch files
 *   or inline patches, target taken from the patch itself or from `target: {kind, name}`), namespace,
 *   commonLabels (metadata.labels and the selectors / pod template labels of the kinds used here), images
 *   (newName / newTag on pod containers).
 * Any other kustomization field is an error, so the manifests cannot silently rely on something this
 * renderer ignores.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface K8sObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string };
}

interface PatchEntry {
  path?: string;
  patch?: string;
  target?: { kind?: string; name?: string };
}

interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'patches', 'namespace', 'commonLabels', 'images']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition',
  'PersistentVolume', 'StorageClass', 'PriorityClass']);
/** Merge keys of the strategic-merge lists used in pod specs (Kubernetes' patchMergeKey). */
const MERGE_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  env: ['name'],
  envFrom: [],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  ports: ['containerPort', 'port'],
  imagePullSecrets: ['name'],
};

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses a YAML stream into its documents (empty documents dropped); throws on any YAML error. */
export function parseYamlStream(text: string, source: string): Json[] {
  const out: Json[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${source}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJSON() as Json;
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function asK8sObject(v: Json, source: string): K8sObject {
  if (!isObject(v) || typeof v.apiVersion !== 'string' || typeof v.kind !== 'string' || !isObject(v.metadata) ||
    typeof v.metadata.name !== 'string') {
    throw new Error(`${source}: not a Kubernetes object (apiVersion, kind, metadata.name)`);
  }
  return v as K8sObject;
}

function clone<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Strategic merge of `patch` into `base` (returns a new value): maps merge, `null` deletes a key,
 * lists with a merge key merge item by item, other lists are replaced. */
export function strategicMerge(base: Json, patch: Json, key = ''): Json {
  if (isObject(base) && isObject(patch)) {
    const out: JsonObject = clone(base);
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = k in out ? strategicMerge(out[k], v, k) : clone(v);
    }
    return out;
  }
  if (Array.isArray(base) && Array.isArray(patch)) {
    const candidates = MERGE_KEYS[key] ?? [];
    const mergeKey = candidates.find((mk) => [...base, ...patch].every((item) => isObject(item) && mk in item));
    if (!mergeKey) return clone(patch);
    const out = clone(base) as JsonObject[];
    for (const item of patch as JsonObject[]) {
      const i = out.findIndex((b) => b[mergeKey] === item[mergeKey]);
      if (i >= 0) out[i] = strategicMerge(out[i], item, '') as JsonObject;
      else out.push(clone(item));
    }
    return out;
  }
  return clone(patch);
}

function podSpecs(obj: K8sObject): JsonObject[] {
  const spec = obj.spec;
  if (!isObject(spec)) return [];
  if (obj.kind === 'Pod') return [spec];
  const template = spec.template;
  if (isObject(template) && isObject(template.spec)) return [template.spec];
  return [];
}

function ensureMap(parent: JsonObject, key: string): JsonObject {
  const v = parent[key];
  if (isObject(v)) return v;
  const m: JsonObject = {};
  parent[key] = m;
  return m;
}

function addLabels(obj: K8sObject, labels: Record<string, string>): void {
  Object.assign(ensureMap(obj.metadata, 'labels'), labels);
  const spec = isObject(obj.spec) ? obj.spec : undefined;
  if (!spec) return;
  if (['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].includes(obj.kind)) {
    Object.assign(ensureMap(ensureMap(spec, 'selector'), 'matchLabels'), labels);
    Object.assign(ensureMap(ensureMap(ensureMap(spec, 'template'), 'metadata'), 'labels'), labels);
  } else if (obj.kind === 'Service') {
    Object.assign(ensureMap(spec, 'selector'), labels);
  } else if (obj.kind === 'PodDisruptionBudget') {
    Object.assign(ensureMap(ensureMap(spec, 'selector'), 'matchLabels'), labels);
  }
}

function setImages(obj: K8sObject, images: ImageEntry[]): void {
  for (const spec of podSpecs(obj)) {
    for (const listName of ['containers', 'initContainers']) {
      const list = spec[listName];
      if (!Array.isArray(list)) continue;
      for (const c of list) {
        if (!isObject(c) || typeof c.image !== 'string') continue;
        const m = /^([^@]*?)(?::([^:/@]+))?(@.*)?$/.exec(c.image)!;
        const entry = images.find((e) => e.name === m[1]);
        if (!entry) continue;
        const tag = entry.newTag ?? m[2];
        c.image = `${entry.newName ?? m[1]}${tag ? `:${tag}` : ''}`;
      }
    }
  }
}

function readKustomization(dir: string): JsonObject {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) {
      const docs = parseYamlStream(fs.readFileSync(file, 'utf8'), file);
      if (docs.length !== 1 || !isObject(docs[0])) throw new Error(`${file}: expected one YAML map`);
      for (const key of Object.keys(docs[0])) {
        if (!SUPPORTED.has(key)) throw new Error(`${file}: field '${key}' is not supported by this renderer`);
      }
      return docs[0];
    }
  }
  throw new Error(`${dir}: no kustomization.yaml`);
}

function stringList(v: Json | undefined, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s): s is string => typeof s === 'string')) throw new Error(`${what}: expected a list of strings`);
  return v;
}

/** Renders the kustomization in `dir` into the list of objects `kubectl kustomize dir` would print. */
export function renderKustomization(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  const objects: K8sObject[] = [];
  for (const res of stringList(k.resources, `${dir} resources`)) {
    const p = path.resolve(dir, res);
    if (!fs.existsSync(p)) throw new Error(`${dir}: resource ${res} does not exist`);
    if (fs.statSync(p).isDirectory()) objects.push(...renderKustomization(p));
    else objects.push(...parseYamlStream(fs.readFileSync(p, 'utf8'), p).map((d) => asK8sObject(d, p)));
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    if (seen.has(id)) throw new Error(`${dir}: ${id} defined twice`);
    seen.add(id);
  }

  const patches = (k.patches ?? []) as unknown as PatchEntry[];
  if (!Array.isArray(patches)) throw new Error(`${dir}: patches must be a list`);
  for (const entry of patches) {
    const source = entry.path ? path.resolve(dir, entry.path) : `${dir} inline patch`;
    const text = entry.path ? fs.readFileSync(source, 'utf8') : entry.patch;
    if (typeof text !== 'string') throw new Error(`${dir}: a patch needs 'path' or 'patch'`);
    for (const doc of parseYamlStream(text, source)) {
      if (!isObject(doc)) throw new Error(`${source}: a strategic-merge patch must be a map (JSON 6902 lists are not supported)`);
      const meta = isObject(doc.metadata) ? doc.metadata : {};
      const kind = entry.target?.kind ?? doc.kind;
      const name = entry.target?.name ?? meta.name;
      const matches = objects.filter((o) => o.kind === kind && o.metadata.name === name);
      if (matches.length !== 1) throw new Error(`${source}: patch target ${String(kind)}/${String(name)} matches ${matches.length} objects`);
      const i = objects.indexOf(matches[0]);
      objects[i] = asK8sObject(strategicMerge(objects[i], doc), source);
    }
  }

  if (k.commonLabels !== undefined) {
    if (!isObject(k.commonLabels)) throw new Error(`${dir}: commonLabels must be a map`);
    const labels = Object.fromEntries(Object.entries(k.commonLabels).map(([a, b]) => [a, String(b)]));
    for (const o of objects) addLabels(o, labels);
  }
  if (k.namespace !== undefined) {
    if (typeof k.namespace !== 'string') throw new Error(`${dir}: namespace must be a string`);
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
  }
  if (k.images !== undefined) {
    const images = k.images as unknown as ImageEntry[];
    if (!Array.isArray(images) || !images.every((e) => typeof e?.name === 'string')) {
      throw new Error(`${dir}: images must be a list of {name, newName?, newTag?}`);
    }
    for (const o of objects) setImages(o, images);
  }
  return objects;
}
