/**
 * Independent paths for the pruning tests: the ONNX file itself, edited by hand (a channel's conv
 * weights and bias zeroed, and where a BatchNormalization follows, its scale and shift for that channel
 * too, so the channel's z_j is 0) and run directly in onnxruntime; filter L1 norms from the initializers
 * with the batch-norm folded by hand; APoZ from the ReLU output added as a graph output.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import { ModelProto, type NodeProto, type TensorProto } from '../../services/graph/generated/onnx/onnx';

function floatsOf(t: TensorProto): Float32Array {
  if (t.rawData.length > 0) {
    const copy = Uint8Array.from(t.rawData);
    return new Float32Array(copy.buffer);
  }
  return Float32Array.from(t.floatData);
}

function setFloats(t: TensorProto, data: Float32Array): void {
  t.rawData = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  t.floatData = [];
}

interface ConvParts {
  model: ModelProto;
  conv: NodeProto;
  bn?: NodeProto;
  relu: NodeProto;
  init: (name: string) => TensorProto;
}

/** The conv node of layer `layer` (execution order), the BatchNormalization after it (if any) and its ReLU. */
export function convParts(bytes: Uint8Array, layer: number): ConvParts {
  const model = ModelProto.decode(bytes);
  const g = model.graph!;
  const conv = g.node.filter((n) => n.opType === 'Conv')[layer]!;
  const after = (value: string): NodeProto | undefined => g.node.find((n) => n.input[0] === value);
  let next = after(conv.output[0]!)!;
  let bn: NodeProto | undefined;
  if (next.opType === 'BatchNormalization') {
    bn = next;
    next = after(bn.output[0]!)!;
  }
  if (next.opType !== 'Relu') throw new Error(`conv layer ${layer} is followed by ${next.opType}, not Relu`);
  const init = (name: string): TensorProto => {
    const t = g.initializer.find((i) => i.name === name);
    if (!t) throw new Error(`no initializer '${name}'`);
    return t;
  };
  return { model, conv, bn, relu: next, init };
}

/** The model file with the given channels of conv layer `layer` zeroed (weights, bias, and a following BN's scale and shift). */
export function zeroedCopy(bytes: Uint8Array, layer: number, channels: number[]): Uint8Array {
  const { model, conv, bn, init } = convParts(bytes, layer);
  const w = init(conv.input[1]!);
  const wd = floatsOf(w);
  const per = wd.length / w.dims[0]!;
  for (const k of channels) wd.fill(0, k * per, (k + 1) * per);
  setFloats(w, wd);
  const zeroAt = (name: string | undefined): void => {
    if (!name) return;
    const t = init(name);
    const d = floatsOf(t);
    for (const k of channels) d[k] = 0;
    setFloats(t, d);
  };
  zeroAt(conv.input[2]);
  if (bn) {
    zeroAt(bn.input[1]);
    zeroAt(bn.input[2]);
  }
  return ModelProto.encode(model).finish();
}

/** Per output channel of conv layer `layer`: Σ|w·γ/√(var+ε)| (the BN folded by hand), or Σ|w| without BN. */
export function plainFilterL1(bytes: Uint8Array, layer: number): number[] {
  const { conv, bn, init } = convParts(bytes, layer);
  const w = init(conv.input[1]!);
  const wd = floatsOf(w);
  const cout = w.dims[0]!;
  const per = wd.length / cout;
  let scale = new Array<number>(cout).fill(1);
  if (bn) {
    const gamma = floatsOf(init(bn.input[1]!));
    const variance = floatsOf(init(bn.input[4]!));
    const eps = bn.attribute.find((a) => a.name === 'epsilon')?.f ?? 1e-5;
    scale = Array.from(gamma, (g, k) => g / Math.sqrt(variance[k]! + eps));
  }
  const out: number[] = [];
  for (let k = 0; k < cout; k++) {
    let s = 0;
    for (let i = 0; i < per; i++) s += Math.abs(wd[k * per + i]! * scale[k]!);
    out.push(s);
  }
  return out;
}

/** Logits (and the named extra outputs) of a model file on [n, ...dims] images, in onnxruntime directly. */
export async function runFile(bytes: Uint8Array, input: Float32Array, dims: number[], extra: string[] = []): Promise<Map<string, ort.Tensor>> {
  const model = ModelProto.decode(bytes);
  const g = model.graph!;
  for (const name of extra) g.output.push({ name });
  const session = await ort.InferenceSession.create(ModelProto.encode(model).finish(), { intraOpNumThreads: 1 });
  try {
    const names = [g.output[0]!.name, ...extra];
    const out = await session.run({ [g.input[0]!.name]: new ort.Tensor('float32', input, dims) }, names);
    return new Map(names.map((n, i) => [i === 0 ? 'logits' : n, out[n]!]));
  } finally {
    await session.release();
  }
}

/** Per class and overall accuracy of logits [n, k] against labels, counted with a plain loop. */
export function plainAccuracy(logits: Float32Array, labels: ArrayLike<number>, classes: number): { accuracy: number; perClass: number[] } {
  const n = labels.length;
  const k = logits.length / n;
  const count = new Array<number>(classes).fill(0);
  const correct = new Array<number>(classes).fill(0);
  let right = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + best]!) best = c;
    count[labels[i]!]!++;
    if (best === labels[i]) {
      correct[labels[i]!]!++;
      right++;
    }
  }
  return { accuracy: right / n, perClass: count.map((c, i) => (c > 0 ? correct[i]! / c : 0)) };
}

export function readBytes(file: string): Uint8Array {
  return new Uint8Array(fs.readFileSync(file));
}
