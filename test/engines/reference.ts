/**
 * The independent path for the engine tests: the original ONNX file run directly in onnxruntime on the test's
 * own thread, optionally with extra graph outputs (intermediate values) added to the file.
 */
import * as ort from 'onnxruntime-node';
import { ModelProto } from '../../services/graph/generated/onnx/onnx';

/** Runs the model file on NCHW `input` of `n` images; returns the named outputs ('logits' by default). */
export async function runOriginal(
  bytes: Uint8Array,
  input: Float32Array,
  dims: number[],
  outputs: string[] = ['logits'],
): Promise<Map<string, ort.Tensor>> {
  const model = ModelProto.decode(bytes);
  const graph = model.graph!;
  const declared = new Set(graph.output.map((o) => o.name));
  for (const name of outputs) if (!declared.has(name)) graph.output.push({ name });
  const session = await ort.InferenceSession.create(ModelProto.encode(model).finish(), { intraOpNumThreads: 1 });
  try {
    const results = await session.run({ [graph.input[0]!.name]: new ort.Tensor('float32', input.slice(), dims) }, outputs);
    return new Map(outputs.map((o) => [o, results[o] as ort.Tensor]));
  } finally {
    await session.release();
  }
}

/** Plain-loop per-channel statistics of an [N, C, H, W] activation: spatial mean and fraction <= 0. */
export function channelStats(t: ort.Tensor): { mean: Float32Array; zeroFraction: Float32Array } {
  const [n, c, h, w] = t.dims as [number, number, number, number];
  const data = t.data as Float32Array;
  const mean = new Float32Array(n * c);
  const zeroFraction = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      let zeros = 0;
      const base = (i * c + ch) * h * w;
      for (let p = 0; p < h * w; p++) {
        const v = data[base + p]!;
        sum += v;
        if (v <= 0) zeros++;
      }
      mean[i * c + ch] = sum / (h * w);
      zeroFraction[i * c + ch] = zeros / (h * w);
    }
  }
  return { mean, zeroFraction };
}
