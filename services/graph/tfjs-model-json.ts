/**
 * What a tfjs JSON file is, in one place: a LayersModel (Keras topology + weight manifest, saved by
 * tfjs-layers or written by tensorflowjs_converter with the topology under `model_config`), a graph model
 * (a TensorFlow GraphDef: `format: "graph-model"`, `modelTopology.node`), or a weights-only manifest (the
 * converter's weights_manifest.json, or a model.json without a topology). Only LayersModels are imported;
 * the others are refused saying what the file is and what to do.
 */
import { failedPrecondition, invalidArgument, unimplemented } from '../errors';

/** A LayersModel's parts. */
export interface LayersModelJson {
  /** The whole model.json. */
  json: Record<string, unknown>;
  /** The Keras model config: `{class_name, config}` (unwrapped from `model_config` where the converter put it). */
  model: Record<string, unknown>;
  /** The model topology as written (holds `keras_version` and `backend` beside `model_config`). */
  topology: Record<string, unknown>;
}

/**
 * The LayersModel in a parsed model.json; failed-precondition for a weights-only manifest, unimplemented for
 * a graph model, invalid-argument for JSON that is no tfjs model at all.
 */
export function readLayersModelJson(doc: unknown, what = 'the file'): LayersModelJson {
  if (Array.isArray(doc)) {
    if (doc.length > 0 && doc.every(isManifestGroup)) throw weightsOnly(what, 'a tfjs weights manifest (a list of weight groups)');
    throw invalidArgument(`${what} is a JSON list, not a tfjs model.json`);
  }
  if (!doc || typeof doc !== 'object') throw invalidArgument(`${what} is not a tfjs model.json (not a JSON object)`);
  const json = doc as Record<string, unknown>;
  const topologyRaw = json.modelTopology;
  if (json.format === 'graph-model' || isGraphDef(topologyRaw)) throw graphModel(what, topologyRaw);
  if (topologyRaw === undefined || topologyRaw === null) {
    if (typeof json.class_name === 'string') return { json, model: json, topology: json }; // a bare Keras topology
    if (Array.isArray(json.weightsManifest) || Array.isArray(json.weightSpecs)) {
      throw weightsOnly(what, 'a tfjs model.json with weights but no modelTopology');
    }
    throw invalidArgument(`${what} is JSON but not a tfjs model.json (it has no modelTopology)`);
  }
  if (typeof topologyRaw !== 'object' || Array.isArray(topologyRaw)) throw invalidArgument(`${what}: modelTopology is not an object`);
  const topology = topologyRaw as Record<string, unknown>;
  const wrapped = topology.model_config;
  if (wrapped !== undefined && wrapped !== null) {
    if (typeof wrapped !== 'object' || Array.isArray(wrapped)) throw invalidArgument(`${what}: modelTopology.model_config is not an object`);
    return { json, model: wrapped as Record<string, unknown>, topology };
  }
  if (topology.class_name === undefined) {
    throw invalidArgument(
      `${what}: modelTopology is neither a Keras model config (class_name, or model_config as tensorflowjs_converter writes) nor a GraphDef; it has ${describeKeys(topology)}`,
    );
  }
  return { json, model: topology, topology };
}

function isManifestGroup(g: unknown): boolean {
  return !!g && typeof g === 'object' && Array.isArray((g as { paths?: unknown }).paths) && Array.isArray((g as { weights?: unknown }).weights);
}

function isGraphDef(t: unknown): boolean {
  return !!t && typeof t === 'object' && Array.isArray((t as { node?: unknown }).node);
}

function weightsOnly(what: string, kind: string): Error {
  return failedPrecondition(
    `${what} is ${kind}: weights without the model's architecture, so there is nothing to import. ` +
      `Give the model.json that holds the topology (tensorflowjs_converter --output_format tfjs_layers_model writes one beside its shards), or an ONNX export of the model`,
  );
}

function graphModel(what: string, topology: unknown): Error {
  const nodes = isGraphDef(topology) ? (topology as { node: unknown[] }).node.length : undefined;
  return unimplemented(
    `${what} is a tfjs graph model (format "graph-model": a TensorFlow GraphDef${nodes === undefined ? '' : ` of ${nodes} node${nodes === 1 ? '' : 's'}`}, as tensorflowjs_converter writes from a SavedModel or TF Hub module); ` +
      'this service imports tfjs LayersModels (Keras) and ONNX. Convert the original Keras model with tensorflowjs_converter ' +
      '--input_format keras --output_format tfjs_layers_model, or export it to ONNX ' +
      `(a graph model itself converts to ONNX with tf2onnx: python -m tf2onnx.convert --tfjs model.json --output model.onnx)`,
  );
}

function describeKeys(o: Record<string, unknown>): string {
  const keys = Object.keys(o);
  return keys.length ? `keys ${keys.slice(0, 8).join(', ')}${keys.length > 8 ? ', …' : ''}` : 'no keys';
}
