/**
 * tfjs model files as people have them, made in the tests from a tfjs-layers model: the layout
 * tensorflowjs_converter writes for a Keras model (topology under `model_config` beside `keras_version`,
 * weights in fixed-size shards), its uint8 / uint16 / float16 quantized weights, and Keras 3 configs.
 * The quantizer follows the converter's documented formula (tfjs-converter python/tensorflowjs/quantization.py)
 * and is written here, independent of the service's dequantizer. The reference loader is tfjs-layers'
 * own `loadLayersModel` over a file IO handler.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export type Quantization = 'uint8' | 'uint16' | 'float16';

/** A model's save artifacts (Keras 2 topology as tfjs-layers writes it). */
export interface Artifacts {
  topology: Record<string, unknown>;
  specs: tf.io.WeightsManifestEntry[];
  data: Uint8Array;
}

export async function artifactsOf(m: tfl.LayersModel): Promise<Artifacts> {
  let out: Artifacts | undefined;
  await m.save(
    tf.io.withSaveHandler(async (a) => {
      out = { topology: a.modelTopology as Record<string, unknown>, specs: a.weightSpecs!, data: new Uint8Array(a.weightData as ArrayBuffer) };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return out!;
}

export interface ConverterOptions {
  /** Every weight quantized to this dtype (the converter's --quantize_uint8 '*' and friends). */
  quantize?: Quantization;
  /** Shard size in bytes (the converter's default is 4 MiB; small here to make several shards). */
  shardBytes?: number;
  /**
   * Topology as Keras 3 writes it (see keras3Topology). Saved as `.h5` (the converter's Keras 2 path): weights
   * named by their Keras 3 variable paths, `<model>/<layer>/<weight>`. Saved as `.keras` (the converter's
   * Keras 3 path, tfjs-converter keras_h5_conversion.h5_v3_merged_saved_model_to_tfjs_format): `module`,
   * `registered_name` dropped from the config, weights named by their place in the file,
   * `layers/[<nested model>/layers/]<layer>/vars/<i>`, i in Keras 3's variable order.
   */
  keras3?: { outputShapes: Map<string, number[]>; saved: 'h5' | 'keras' };
}

/** Writes model.json and group1-shard{i}of{n}.bin into `dir` as tensorflowjs_converter lays them out. */
export function writeConverterLayout(dir: string, a: Artifacts, opts: ConverterOptions = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const floats = new Float32Array(a.data.buffer.slice(a.data.byteOffset, a.data.byteOffset + a.data.byteLength));
  const parts: Uint8Array[] = [];
  const weights: Record<string, unknown>[] = [];
  let at = 0;
  for (const spec of a.specs) {
    const count = spec.shape.reduce((x, y) => x * y, 1);
    const values = floats.subarray(at, at + count);
    at += count;
    const entry: Record<string, unknown> = { name: keras3WeightName(spec.name, a.topology, opts.keras3?.saved), shape: spec.shape, dtype: 'float32' };
    if (opts.quantize) {
      const q = quantize(values, opts.quantize);
      entry.quantization = { dtype: opts.quantize, ...q.metadata, original_dtype: 'float32' };
      parts.push(q.bytes);
    } else {
      parts.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice());
    }
    weights.push(entry);
  }
  const all = Buffer.concat(parts);
  const shard = opts.shardBytes ?? 4 * 1024 * 1024;
  const n = Math.max(1, Math.ceil(all.length / shard));
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `group1-shard${i + 1}of${n}.bin`;
    fs.writeFileSync(path.join(dir, name), all.subarray(i * shard, (i + 1) * shard));
    paths.push(name);
  }
  const version = opts.keras3 ? '3.5.0' : '2.15.0';
  let modelConfig = opts.keras3 ? keras3Topology(a.topology, opts.keras3.outputShapes) : a.topology;
  if (opts.keras3?.saved === 'keras') modelConfig = dropKeys(modelConfig, ['module', 'registered_name']) as Record<string, unknown>;
  const json = {
    format: 'layers-model',
    generatedBy: `keras v${version}`,
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: {
      keras_version: version,
      backend: 'tensorflow',
      model_config: stripVersion(modelConfig),
      training_config: { loss: 'categorical_crossentropy', metrics: ['accuracy'], optimizer_config: { class_name: 'Adam', config: { learning_rate: 0.001 } } },
    },
    weightsManifest: [{ paths, weights }],
  };
  const file = path.join(dir, 'model.json');
  fs.writeFileSync(file, JSON.stringify(json));
  return file;
}

/** Keras 3 variable order of the weights the fixtures have (Conv2D, DepthwiseConv2D, Dense: kernel, bias; BatchNormalization). */
const KERAS3_VARIABLE_INDEX: Record<string, number> = { kernel: 0, bias: 1, gamma: 0, beta: 1, moving_mean: 2, moving_variance: 3 };
/** Weights Keras 3 renamed: DepthwiseConv2D's depthwise_kernel is its kernel. */
const KERAS3_RENAMED: Record<string, string> = { depthwise_kernel: 'kernel' };

/** A tfjs-layers weight name ('layer/weight') as the converter names it for a Keras 3 model saved as `saved`. */
function keras3WeightName(name: string, topology: Record<string, unknown>, saved: 'h5' | 'keras' | undefined): string {
  if (!saved) return name;
  const [layer, original] = name.split('/') as [string, string];
  const weight = KERAS3_RENAMED[original] ?? original;
  const outer = topology.config as { name: string; layers: Array<{ class_name: string; config: { name: string; layers?: Array<{ config: { name: string } }> } }> };
  const nested = outer.layers.find((l) => l.config.layers?.some((inner) => inner.config.name === layer))?.config.name;
  if (saved === 'h5') return [outer.name, nested, layer, weight].filter(Boolean).join('/');
  const index = KERAS3_VARIABLE_INDEX[weight];
  if (index === undefined) throw new Error(`no Keras 3 variable index for ${name}`);
  return [...(nested ? ['layers', nested] : []), 'layers', layer, 'vars', String(index)].join('/');
}

function dropKeys(v: unknown, keys: string[]): unknown {
  if (Array.isArray(v)) return v.map((x) => dropKeys(x, keys));
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !keys.includes(k)).map(([k, x]) => [k, dropKeys(x, keys)]));
}

/** tfjs-layers puts keras_version / backend on the topology itself; the converter puts them beside model_config. */
function stripVersion(t: Record<string, unknown>): Record<string, unknown> {
  const { keras_version: _k, backend: _b, ...rest } = t;
  return rest;
}

// ---- the converter's quantizer -------------------------------------------------------------------------

/**
 * quantize_weights of tfjs-converter: uint8/uint16 affine over [min, max] with the range nudged so that 0 is
 * a quantized value (when 0 lies in it), q = round_half_even((clip(x) − min) / scale); float16 by
 * round-to-nearest-even. Arithmetic in float64 (NumPy 2 promotion of the float64 min and scale). Metadata as
 * the manifest carries it.
 */
export function quantize(values: Float32Array, dtype: Quantization): { bytes: Uint8Array; metadata: Record<string, number> } {
  const out = new DataView(new ArrayBuffer(values.length * (dtype === 'uint8' ? 1 : 2)));
  if (dtype === 'float16') {
    values.forEach((v, i) => out.setUint16(2 * i, float16Bits(v), true));
    return { bytes: new Uint8Array(out.buffer), metadata: {} };
  }
  const qmax = dtype === 'uint8' ? 255 : 65535;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  let scale = 1;
  let min = lo;
  let max = hi;
  if (lo !== hi) {
    scale = (hi - lo) / qmax;
    if (lo <= 0 && 0 <= hi) {
      const zero = roundHalfEven((0 - lo) / scale);
      min = -zero * scale;
      max = qmax * scale + min;
    }
  }
  values.forEach((v, i) => {
    const q = lo === hi ? 0 : roundHalfEven((Math.min(Math.max(v, min), max) - min) / scale);
    if (dtype === 'uint8') out.setUint8(i, q);
    else out.setUint16(2 * i, q, true);
  });
  return { bytes: new Uint8Array(out.buffer), metadata: { min, scale } };
}

function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** IEEE half bits of a float32 value, round to nearest even (numpy's astype(float16)). */
export function float16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (rest > mid || (rest === mid && (half & 1)) ? half + 1 : half);
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? half + 1 : half);
}

// ---- Keras 3 configs ---------------------------------------------------------------------------------------

/**
 * The Keras 2 topology tfjs-layers writes, rewritten as Keras 3 writes it: `module` and `registered_name` on
 * every object, the model class `Functional`, `batch_shape` for `batch_input_shape`, dtype policies as
 * objects, LeakyReLU's `negative_slope`, explicit InputLayers in Sequential models, and inbound nodes as
 * `{args: [__keras_tensor__ ...], kwargs}` (several inputs: one list argument).
 */
export function keras3Topology(t: Record<string, unknown>, outputShapes: Map<string, number[]>): Record<string, unknown> {
  const tensor = (ref: unknown[]): Record<string, unknown> => ({
    class_name: '__keras_tensor__',
    config: { shape: [null, ...(outputShapes.get(String(ref[0])) ?? [])], dtype: 'float32', keras_history: [ref[0], ref[1], ref[2]] },
  });
  const config = (cls: string, c: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(c)) {
      if (k === 'batch_input_shape') continue;
      if (k === 'dtype') out.dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name: v }, registered_name: null };
      else if (k === 'alpha' && cls === 'LeakyReLU') out.negative_slope = v;
      else out[k] = v;
    }
    if (c.batch_input_shape) out.batch_shape = c.batch_input_shape;
    return out;
  };
  const layer = (l: Record<string, unknown>): Record<string, unknown> => {
    const cls = String(l.class_name);
    if (cls === 'Sequential' || cls === 'Model') return model(l);
    const out: Record<string, unknown> = { module: 'keras.layers', class_name: cls, config: config(cls, l.config as Record<string, unknown>), registered_name: null };
    if (l.name !== undefined) out.name = l.name;
    if (Array.isArray(l.inbound_nodes)) out.inbound_nodes = l.inbound_nodes.map(inbound(tensor));
    return out;
  };
  const model = (m: Record<string, unknown>): Record<string, unknown> => {
    const cfg = m.config as Record<string, unknown>;
    const layers = (cfg.layers as Record<string, unknown>[]).map(layer);
    const out: Record<string, unknown> = { module: 'keras', class_name: m.class_name === 'Model' ? 'Functional' : m.class_name, registered_name: null };
    if (m.class_name === 'Sequential') {
      const first = (cfg.layers as Array<{ config: Record<string, unknown> }>)[0]!.config;
      const input = {
        module: 'keras.layers',
        class_name: 'InputLayer',
        config: { batch_shape: first.batch_input_shape, dtype: 'float32', sparse: false, name: `${String(cfg.name)}_input` },
        registered_name: null,
      };
      delete (layers[0]!.config as Record<string, unknown>).batch_shape;
      out.config = { name: cfg.name, trainable: true, dtype: 'float32', layers: [input, ...layers] };
    } else {
      out.config = { name: cfg.name, trainable: true, layers, input_layers: cfg.input_layers, output_layers: cfg.output_layers };
    }
    if (m.name !== undefined) out.name = m.name;
    if (Array.isArray(m.inbound_nodes)) out.inbound_nodes = m.inbound_nodes.map(inbound(tensor));
    return out;
  };
  return model(t);
}

function inbound(tensor: (ref: unknown[]) => Record<string, unknown>): (node: unknown) => Record<string, unknown> {
  return (node) => {
    const refs = node as unknown[][];
    return { args: refs.length === 1 ? [tensor(refs[0]!)] : [refs.map(tensor)], kwargs: {} };
  };
}

// ---- the reference loader ------------------------------------------------------------------------------------

/** tfjs-layers' own loader on model.json and its shards (read from disk through an IO handler). */
export async function tfjsLayersLoad(modelJsonPath: string): Promise<tfl.LayersModel> {
  const json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
  const dir = path.dirname(modelJsonPath);
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const data = Buffer.concat(manifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
        return [specs, data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)];
      }),
  };
  return tfl.loadLayersModel(handler);
}
