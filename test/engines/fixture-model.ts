/**
 * Small tfjs-layers models built in the tests (random but fixed weights), saved as model.json + weights.bin
 * through a custom save handler, as the fixtures of the tfjs importer.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { seededRandom } from './support';

/**
 * Sequential: Conv2D (same) → BatchNormalization → LeakyReLU → MaxPooling2D → ZeroPadding2D → DepthwiseConv2D
 * (relu) → Conv2D (stride 2, same, relu6 through ReLU(max_value)) → AveragePooling2D (stride 1) → Flatten → Dropout
 * → Dense. Input 14×14×3, 5 classes. The Flatten sees a 2×2 map, so the Dense rows need the NHWC → NCHW
 * permutation.
 */
export function sequentialFixture(): tfl.Sequential {
  const m = tfl.sequential();
  m.add(tfl.layers.conv2d({ inputShape: [14, 14, 3], filters: 8, kernelSize: 3, padding: 'same', name: 'conv_a' }));
  m.add(tfl.layers.batchNormalization({ name: 'bn_a' }));
  m.add(tfl.layers.leakyReLU({ alpha: 0.2, name: 'leaky_a' }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool_a' }));
  m.add(tfl.layers.zeroPadding2d({ padding: [[1, 0], [0, 1]], name: 'pad_b' }));
  m.add(tfl.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, activation: 'relu', name: 'dw_b' }));
  m.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same', name: 'conv_c' }));
  m.add(tfl.layers.reLU({ maxValue: 6, name: 'relu6_c' }));
  // 'valid' here: tfjs' own AvgPool gradient is wrong for 'same' padding (it divides by the full window), and
  // this model's input gradients are checked against tf.grad. The functional fixture has a 'same' one.
  m.add(tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: 'valid', name: 'avg_c' }));
  m.add(tfl.layers.flatten({ name: 'flat' }));
  m.add(tfl.layers.dropout({ rate: 0.5, name: 'drop' }));
  m.add(tfl.layers.dense({ units: 5, name: 'logits' }));
  randomise(m, 11);
  return m;
}

/**
 * Functional: two conv branches added, concatenated with a third, BN (not after a conv: stays an affine),
 * tanh and sigmoid, AveragePooling2D (3×3, stride 2, same), global average and max pooling concatenated,
 * Dense + softmax (dropped by the importer). Input 10×10×2, 4 classes.
 */
export function functionalFixture(): tfl.LayersModel {
  const input = tfl.input({ shape: [10, 10, 2], name: 'image' });
  const a = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'branch_a' }).apply(input) as tfl.SymbolicTensor;
  const b = tfl.layers.conv2d({ filters: 4, kernelSize: 1, name: 'branch_b' }).apply(input) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'sum' }).apply([a, b]) as tfl.SymbolicTensor;
  const c = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh', name: 'branch_c' }).apply(input) as tfl.SymbolicTensor;
  const cat = tfl.layers.concatenate({ name: 'cat' }).apply([sum, c]) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'bn' }).apply(cat) as tfl.SymbolicTensor;
  const act = tfl.layers.activation({ activation: 'sigmoid', name: 'squash' }).apply(bn) as tfl.SymbolicTensor;
  const avg = tfl.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same', name: 'avg' }).apply(act) as tfl.SymbolicTensor;
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(avg) as tfl.SymbolicTensor;
  const gmp = tfl.layers.globalMaxPooling2d({ name: 'gmp' }).apply(avg) as tfl.SymbolicTensor;
  const pooled = tfl.layers.concatenate({ name: 'pooled' }).apply([gap, gmp]) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 4, activation: 'softmax', name: 'probs' }).apply(pooled) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: out, name: 'functional_fixture' });
  randomise(m, 23);
  return m;
}

/**
 * Functional with two nested Sequential models, as Keras applications are built: a stem conv (relu), the
 * `block` model (Conv2D → BatchNormalization → ReLU → DepthwiseConv2D) added to the stem, MaxPooling2D, Conv2D →
 * BatchNormalization → LeakyReLU, then the `classifier` model (Flatten over a 5×5 map → Dense relu → Dropout
 * → Dense softmax: the model's last layer sits inside a nested model). Input 12×12×3, 6 classes.
 */
export function nestedFixture(): tfl.LayersModel {
  const block = tfl.sequential({
    name: 'block',
    layers: [
      tfl.layers.conv2d({ inputShape: [12, 12, 4], filters: 4, kernelSize: 3, padding: 'same', name: 'block_conv' }),
      tfl.layers.batchNormalization({ name: 'block_bn' }),
      tfl.layers.reLU({ name: 'block_relu' }),
      tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'block_dw' }),
    ],
  });
  const classifier = tfl.sequential({
    name: 'classifier',
    layers: [
      tfl.layers.flatten({ inputShape: [5, 5, 6], name: 'flat' }),
      tfl.layers.dense({ units: 16, activation: 'relu', name: 'hidden' }),
      tfl.layers.dropout({ rate: 0.3, name: 'drop' }),
      tfl.layers.dense({ units: 6, activation: 'softmax', name: 'probs' }),
    ],
  });
  const input = tfl.input({ shape: [12, 12, 3], name: 'image' });
  const stem = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'stem' }).apply(input) as tfl.SymbolicTensor;
  const b = block.apply(stem) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'skip' }).apply([b, stem]) as tfl.SymbolicTensor;
  const pooled = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(sum) as tfl.SymbolicTensor;
  const head = tfl.layers.conv2d({ filters: 6, kernelSize: 2, name: 'head' }).apply(pooled) as tfl.SymbolicTensor;
  const bn = tfl.layers.batchNormalization({ name: 'head_bn' }).apply(head) as tfl.SymbolicTensor;
  const act = tfl.layers.leakyReLU({ alpha: 0.1, name: 'head_leaky' }).apply(bn) as tfl.SymbolicTensor;
  const out = classifier.apply(act) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: out, name: 'nested_fixture' });
  randomise(m, 31);
  return m;
}

/**
 * Transfer learning's shape, `Sequential([base, pooling, head])`: a Sequential whose first layer is a
 * functional model (input 8×8×2 → conv relu → conv, added to the first conv → ReLU), then
 * GlobalAveragePooling2D and Dense softmax. 3 classes.
 */
export function transferFixture(): tfl.Sequential {
  const input = tfl.input({ shape: [8, 8, 2], name: 'base_input' });
  const c1 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'base_conv1' }).apply(input) as tfl.SymbolicTensor;
  const c2 = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'base_conv2' }).apply(c1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'base_add' }).apply([c1, c2]) as tfl.SymbolicTensor;
  const out = tfl.layers.reLU({ name: 'base_relu' }).apply(sum) as tfl.SymbolicTensor;
  const base = tfl.model({ inputs: input, outputs: out, name: 'base' });
  const m = tfl.sequential({
    name: 'transfer',
    layers: [base, tfl.layers.globalAveragePooling2d({ name: 'gap' }), tfl.layers.dense({ units: 3, activation: 'softmax', name: 'head' })],
  });
  randomise(m, 41);
  return m;
}

/** Seeded weights; batch-norm statistics kept plausible (positive variances). */
export function randomise(m: tfl.LayersModel, seed: number): void {
  const rand = seededRandom(seed);
  const values = m.weights.map((w) => {
    const shape = w.shape.map((d) => d ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const name = w.originalName;
    for (let i = 0; i < size; i++) {
      if (name.endsWith('moving_variance')) data[i] = rand(0.3, 2);
      else if (name.endsWith('gamma')) data[i] = rand(0.5, 1.5);
      else data[i] = rand(-0.5, 0.5);
    }
    return tf.tensor(data, shape);
  });
  m.setWeights(values);
  values.forEach((t) => t.dispose());
}

/** Saves the model as model.json + weights.bin in a new temporary folder; returns the model.json path. */
export async function saveToTempDir(m: tfl.LayersModel): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'introspect-tfjs-'));
  await m.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = artifacts.weightData as ArrayBuffer;
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(weights));
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return path.join(dir, 'model.json');
}

/** NCHW [n, C, H, W] → NHWC data for tfjs-layers. */
export function nchwToNhwc(data: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((i * h + y) * w + x) * c + ch] = data[((i * c + ch) * h + y) * w + x]!;
  return out;
}

export function nhwcToNchw(data: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[((i * c + ch) * h + y) * w + x] = data[((i * h + y) * w + x) * c + ch]!;
  return out;
}
