/**
 * Test helper: a shared model file opened with onnxruntime directly (the real model, no engine in
 * between), its sidecar preprocessing, and a plain-loop CIFAR-10 reader for cross-checks.
 */
import * as fs from 'node:fs';
import * as ort from 'onnxruntime-node';
import type { Forward } from '../../services/analysis/forward';
import type { PreprocessSpec } from '../../services/data/preprocessing';
import { sharedPath } from '../support/shared';

export interface OrtModel {
  forward: Forward;
  inputShape: [number, number, number];
  spec: PreprocessSpec;
}

export async function ortModel(name: string, fit: PreprocessSpec['fit'] = 'resize'): Promise<OrtModel> {
  const session = await ort.InferenceSession.create(fs.readFileSync(sharedPath('models', `${name}.onnx`)));
  const sidecar = JSON.parse(fs.readFileSync(sharedPath('models', `${name}.json`), 'utf8')) as {
    input: { shape: (number | null)[]; mean: number[]; std: number[] };
  };
  const [, c, h, w] = sidecar.input.shape as number[];
  const inputShape: [number, number, number] = [c, h, w];
  const forward: Forward = async (input, n) => {
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', input, [n, c, h, w]) };
    const out = await session.run(feeds);
    return out[session.outputNames[0]].data as Float32Array;
  };
  return {
    forward,
    inputShape,
    spec: { scale: 1 / 255, mean: sidecar.input.mean, std: sidecar.input.std, channelOrder: 'rgb', fit },
  };
}

export interface CifarRecords {
  labels: number[];
  /** R, G, B planes (3,072 bytes) per image. */
  planes: Buffer[];
}

/** The first n records of the CIFAR-10 test batch, read with a loop of the test's own. */
export function cifarTestRecords(n: number): CifarRecords {
  const file = fs.readFileSync(sharedPath('datasets/cifar-10-batches-bin/test_batch.bin'));
  const labels: number[] = [];
  const planes: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    labels.push(file[i * 3073]);
    planes.push(file.subarray(i * 3073 + 1, (i + 1) * 3073));
  }
  return { labels, planes };
}

/** Planes (CHW raw, float or uint8) → input space with per-channel mean/std, written out directly. */
export function normalisePlanes(planes: ArrayLike<number>, mean: number[], std: number[]): Float32Array {
  const out = new Float32Array(3072);
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) out[c * 1024 + p] = (planes[c * 1024 + p] / 255 - mean[c]) / std[c];
  return out;
}

/** softmax(logits row)[j] in float64, the textbook way (max-shifted). */
export function softmaxAt(logits: ArrayLike<number>, row: number, classes: number, j: number): number {
  let max = -Infinity;
  for (let k = 0; k < classes; k++) max = Math.max(max, logits[row * classes + k]);
  let z = 0;
  for (let k = 0; k < classes; k++) z += Math.exp(logits[row * classes + k] - max);
  return Math.exp(logits[row * classes + j] - max) / z;
}
