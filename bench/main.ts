/**
 * `npm run bench`: the speed figures the README records, measured through the services (no gRPC in
 * the way). Every figure is wall time on this machine; run it on a quiet machine.
 *
 *   node dist/bench/main.js [section ...] [--quick]
 *
 * Sections (default: all but `similarity` and `prune`, which take minutes):
 *   means      class-mean throughput over MNIST train (60,000 images)
 *   evaluate   Evaluate throughput of ResNet-20 on CIFAR-10 test, 1 and 2 onnxruntime workers
 *   gbp        guided backprop for every conv channel of vgg11_cifar10 (1 worker × 1 thread, 2 workers × 1
 *              thread), against one neuron per run (the way per-neuron tools work), ResNet-20, a 224×224
 *              model, peak memory, and the tfjs engine
 *   similarity the full similarity analysis of vgg11_cifar10 (10 classes × 2,752 neurons, methods 1 and 2)
 *   prune      the table-5-1 pruning sweep of vgg11_cifar10 (8 layers × 7 evaluations of 10,000 images; bench/prune.ts)
 *
 * Results are printed as a table and written to bench/results.json (git-ignored).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { classAverages } from '../services/analysis/averages';
import { evaluate } from '../services/analysis/evaluate';
import type { Forward } from '../services/analysis/forward';
import { DatasetRegistry } from '../services/data/registry';
import type { Engine, EngineModel } from '../services/engines/engine';
import { OnnxRuntimeEngine } from '../services/engines/onnxruntime/engine';
import { TfjsEngine } from '../services/engines/tfjs/engine';
import type { IrGraph, IrNode, WeightTensor } from '../services/graph/ir';
import { inferGraphShapes } from '../services/graph/ir-shapes';
import { convLayers } from '../services/graph/layers';
import type { LoadedModel } from '../services/models/model';
import { ModelRegistry } from '../services/models/registry';
import { pruneBench } from './prune';
import { similarityBench } from './similarity';

const REPO = path.resolve(__dirname, '..', '..');
const SHARED = path.resolve(process.env.INTROSPECT_SHARED ?? path.join(REPO, '..', 'shared'));

interface Row {
  what: string;
  value: number;
  unit: string;
  note?: string;
}
const rows: Row[] = [];
function record(what: string, value: number, unit: string, note?: string): void {
  rows.push({ what, value, unit, note });
  console.log(`  ${what}: ${value.toFixed(unit === 's' ? 2 : 0)} ${unit}${note ? `  (${note})` : ''}`);
}

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
rssTimer.unref();

const seconds = (t0: number): number => (performance.now() - t0) / 1000;

async function loadModel(registry: ModelRegistry, name: string, file: string): Promise<LoadedModel> {
  return registry.loadFromPath({ name, path: file });
}

/** A deterministic input in the model's input space. */
function probeInput(shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
}

async function benchMeans(quick: boolean): Promise<void> {
  console.log('class means over MNIST train');
  const data = new DatasetRegistry({ dataRoot: path.join(SHARED, 'datasets') });
  await data.register({ name: 'mnist', path: 'builtin:mnist' });
  const models = new ModelRegistry({ modelRoot: path.join(REPO, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const model = await loadModel(models, 'mnist_cnn', 'mnist_cnn.onnx');
  const engine = new OnnxRuntimeEngine({ workers: 1, intraOpThreads: 1 });
  try {
    const forward: Forward = (x, n, signal) => engine.forward(model.engineModel, x, n, { signal });
    const runs = quick ? 1 : 3;
    let best = Infinity;
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      let used = 0;
      for await (const a of classAverages({
        dataset: data.get('mnist'),
        split: 'train',
        preprocessing: model.preprocessing,
        inputShape: model.inputShape,
        forward,
        kind: 'mean',
      })) {
        used += a.imagesUsed;
      }
      best = Math.min(best, seconds(t0));
      if (used !== 60000) throw new Error(`expected 60000 images, averaged ${used}`);
    }
    record('class means, MNIST train (60,000 images), best of ' + runs, 60000 / best, 'images/s');
  } finally {
    await engine.close();
  }
}

async function benchEvaluate(quick: boolean): Promise<void> {
  console.log('Evaluate, ResNet-20 on CIFAR-10 test');
  const data = new DatasetRegistry({ dataRoot: path.join(SHARED, 'datasets') });
  await data.register({ name: 'cifar10', path: 'cifar-10-batches-bin' });
  const models = new ModelRegistry({ modelRoot: path.join(SHARED, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const model = await loadModel(models, 'resnet20', 'resnet20_cifar10.onnx');
  const limit = quick ? 1000 : 10000;
  for (const workers of [1, 2]) {
    const engine = new OnnxRuntimeEngine({ workers, intraOpThreads: 1 });
    try {
      await engine.ready();
      const forward: Forward = (x, n, signal) => engine.forward(model.engineModel, x, n, { signal });
      const t0 = performance.now();
      let accuracy = NaN;
      for await (const u of evaluate({
        dataset: data.get('cifar10'),
        split: 'test',
        preprocessing: model.preprocessing,
        inputShape: model.inputShape,
        forward,
        limit,
      })) {
        if (u.result) accuracy = u.result.accuracy;
      }
      const s = seconds(t0);
      record(`Evaluate ResNet-20, ${limit} images, ${workers} worker(s) × 1 thread`, limit / s, 'images/s', `accuracy ${accuracy.toFixed(4)}`);
    } finally {
      await engine.close();
    }
  }
}

/** GBP images for every channel of every conv layer; returns seconds. */
async function allChannels(engine: Engine, model: EngineModel, input: Float32Array, layers = model.convLayers): Promise<number> {
  const t0 = performance.now();
  for (const layer of layers) {
    const channels = Array.from({ length: layer.channels }, (_, k) => k);
    await engine.attribute(model, input, { kind: 'conv', layer: layer.index, channels, objective: 'abs_sum' }, 'guided');
  }
  return seconds(t0);
}

/** One neuron per run (forward repeated each time) for `sample` channels per layer; extrapolated. */
async function oneByOne(engine: Engine, model: EngineModel, input: Float32Array, sample: number): Promise<{ s: number; measured: number }> {
  let total = 0;
  let measured = 0;
  for (const layer of model.convLayers) {
    const n = Math.min(sample, layer.channels);
    const t0 = performance.now();
    for (let k = 0; k < n; k++) {
      await engine.attribute(model, input, { kind: 'conv', layer: layer.index, channels: [k], objective: 'abs_sum' }, 'guided');
    }
    const s = seconds(t0);
    measured += n;
    total += (s / n) * layer.channels;
  }
  return { s: total, measured };
}

/** Warms an engine's per-layer graphs/sessions so timings exclude one-off compilation. */
async function warm(engine: Engine, model: EngineModel, input: Float32Array): Promise<void> {
  for (const layer of model.convLayers) {
    await engine.attribute(model, input, { kind: 'conv', layer: layer.index, channels: [0], objective: 'abs_sum' }, 'guided');
  }
}

/** A VGG-style 224×224×3 network with fixed pseudo-random He-initialised weights (no 224 model is bundled). */
function vgg224(): EngineModel {
  let seed = 1234;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  };
  const weights = new Map<string, WeightTensor>();
  const nodes: IrNode[] = [];
  const widths = [32, 64, 128, 128, 256];
  let value = 'input';
  let cin = 3;
  widths.forEach((cout, i) => {
    const w = new Float32Array(cout * cin * 9);
    const std = Math.sqrt(2 / (cin * 9)) * 3.4;
    for (let j = 0; j < w.length; j++) w[j] = rand() * std;
    weights.set(`w${i}`, { shape: [cout, cin, 3, 3], data: w });
    weights.set(`b${i}`, { shape: [cout], data: new Float32Array(cout).fill(0.01) });
    nodes.push({ name: `conv${i}`, inputs: [value], output: `z${i}`, op: { op: 'conv', weight: `w${i}`, bias: `b${i}`, kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 } });
    nodes.push({ name: `relu${i}`, inputs: [`z${i}`], output: `r${i}`, op: { op: 'relu' } });
    nodes.push({ name: `pool${i}`, inputs: [`r${i}`], output: `p${i}`, op: { op: 'max_pool', kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceilMode: false, countIncludePad: false } });
    value = `p${i}`;
    cin = cout;
  });
  nodes.push({ name: 'gap', inputs: [value], output: 'gap', op: { op: 'global_avg_pool' } });
  nodes.push({ name: 'flatten', inputs: ['gap'], output: 'flat', op: { op: 'flatten' } });
  const fc = new Float32Array(10 * cin);
  for (let j = 0; j < fc.length; j++) fc[j] = rand() * Math.sqrt(2 / cin) * 3.4;
  weights.set('fc', { shape: [10, cin], data: fc });
  nodes.push({ name: 'fc', inputs: ['flat'], output: 'logits', op: { op: 'dense', weight: 'fc' } });
  const graph: IrGraph = { input: { name: 'input', shape: [3, 224, 224] }, output: 'logits', nodes, weights, shapes: new Map() };
  graph.shapes = inferGraphShapes(graph);
  return { id: 'bench-vgg224', graph, convLayers: convLayers(graph), classes: 10 };
}

async function benchGbp(quick: boolean): Promise<void> {
  console.log('guided backprop, every conv channel for one input');
  const models = new ModelRegistry({ modelRoot: path.join(SHARED, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const vgg = (await loadModel(models, 'vgg11', 'vgg11_cifar10.onnx')).engineModel;
  const resnet = (await loadModel(models, 'resnet20', 'resnet20_cifar10.onnx')).engineModel;
  const channels = vgg.convLayers.reduce((a, l) => a + l.channels, 0);
  const x = probeInput(vgg.graph.input.shape);

  for (const workers of [1, 2]) {
    const engine = new OnnxRuntimeEngine({ workers, intraOpThreads: 1 });
    try {
      await engine.ready();
      await warm(engine, vgg, x);
      // A 2-vCPU VM varies by ±15% from run to run: the median of three runs, with the range.
      const runs: number[] = [];
      for (let r = 0; r < (quick ? 1 : 3); r++) runs.push(await allChannels(engine, vgg, x));
      runs.sort((a, b) => a - b);
      const s = runs[Math.floor(runs.length / 2)];
      record(`GBP vgg11_cifar10, all ${channels} conv channels, onnxruntime ${workers} worker(s) × 1 thread`, s, 's', runs.length > 1 ? `median of ${runs.length}: ${runs.map((v) => v.toFixed(2)).join(' / ')} s` : undefined);
      if (workers === 1) {
        const one = await oneByOne(engine, vgg, x, quick ? 4 : 16);
        record(`GBP vgg11_cifar10, one neuron per run (forward repeated), extrapolated from ${one.measured} neurons`, one.s, 's', `batched is ${(one.s / s).toFixed(1)}× faster`);
        await warm(engine, resnet, probeInput(resnet.graph.input.shape));
        const rs = await allChannels(engine, resnet, probeInput(resnet.graph.input.shape));
        const rc = resnet.convLayers.reduce((a, l) => a + l.channels, 0);
        record(`GBP resnet20_cifar10, all ${rc} conv channels, 1 worker × 1 thread`, rs, 's');
      }
      if (workers === 2) {
        const big = vgg224();
        const bx = probeInput(big.graph.input.shape);
        await warm(engine, big, bx);
        const bc = big.convLayers.reduce((a, l) => a + l.channels, 0);
        const bs = await allChannels(engine, big, bx);
        record(`GBP VGG-style 3×224×224 (5 conv layers, ${bc} channels), 2 workers × 1 thread`, bs, 's', `${((bs / bc) * 1000).toFixed(1)} ms per channel`);
      }
    } finally {
      await engine.close();
    }
  }
  record('peak resident memory during the GBP runs', peakRss / 2 ** 20, 'MiB');

  const tfjs = new TfjsEngine({});
  try {
    await tfjs.ready();
    const st = tfjs.status();
    const layer = vgg.convLayers[4];
    const channelsTf = Array.from({ length: 64 }, (_, k) => k);
    await tfjs.attribute(vgg, x, { kind: 'conv', layer: layer.index, channels: [0], objective: 'abs_sum' }, 'guided');
    const t0 = performance.now();
    await tfjs.attribute(vgg, x, { kind: 'conv', layer: layer.index, channels: channelsTf, objective: 'abs_sum' }, 'guided');
    record(`GBP vgg11_cifar10 layer 4, 64 channels, tfjs (${st.backend})`, seconds(t0), 's');
    if (!quick) {
      const s = await allChannels(tfjs, vgg, x);
      record(`GBP vgg11_cifar10, all ${channels} conv channels, tfjs (${st.backend})`, s, 's');
    }
  } finally {
    await tfjs.close();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const picked = args.filter((a) => !a.startsWith('--'));
  const sections = picked.length > 0 ? picked : ['means', 'evaluate', 'gbp'];
  if (!fs.existsSync(SHARED)) throw new Error(`shared fixtures not found at ${SHARED} (set INTROSPECT_SHARED)`);
  console.log(`cnn-introspect bench on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`);
  for (const s of sections) {
    if (s === 'means') await benchMeans(quick);
    else if (s === 'evaluate') await benchEvaluate(quick);
    else if (s === 'gbp') await benchGbp(quick);
    else if (s === 'similarity') await similarityBench(SHARED, record, quick);
    else if (s === 'prune') await pruneBench(SHARED, record, quick);
    else throw new Error(`unknown section ${s} (means | evaluate | gbp | similarity | prune)`);
  }
  const out = path.join(REPO, 'bench', 'results.json');
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, rows }, null, 2));
  console.log(`\nwritten ${path.relative(process.cwd(), out)}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
