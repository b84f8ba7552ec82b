/**
 * Guided backprop speed of the attribution graphs (services/graph/backward.ts) on onnxruntime CPU:
 * every conv channel of a model for one image, one session per layer, 1 intra-op thread.
 *
 *   node dist/bench/graph-gbp.js [model=vgg11_cifar10] [chunk=all|N] [passes=all|none|<name>,<name>...]
 *
 * `passes` picks the device passes of the graphs (services/graph/passes): all (onnxruntime CPU's default),
 * none (the plain graph), or a comma-separated list of pass names.
 *
 * Prints per-layer and total seconds (session creation reported apart), and the time of one batched run
 * of 64 channels of layer 4 (DESIGN.md quotes ~109 ms for that on this class of machine). Both wall
 * time and the process's CPU time are shown: on a shared machine the CPU time (one thread) is the
 * steadier measure of the work.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { importOnnx } from '../services/graph/onnx-import';
import { exportAttribution } from '../services/graph/backward';
import { ALL_PASSES, NO_PASSES, passKey, passSet } from '../services/graph/passes';
import { convLayers } from '../services/graph/layers';

const SHARED = path.resolve(process.env.INTROSPECT_SHARED ?? path.join(process.cwd(), '..', 'shared'));

async function main(): Promise<void> {
  const model = process.argv[2] ?? 'vgg11_cifar10';
  const chunkArg = process.argv[3] ?? 'all';
  const passArg = process.argv[4] ?? 'all';
  const passes = passArg === 'all' ? ALL_PASSES : passArg === 'none' ? NO_PASSES : passSet(passArg.split(','));
  const form = passKey(passes);
  const g = importOnnx(fs.readFileSync(path.join(SHARED, 'models', `${model}.onnx`)));
  const [c, h, w] = g.input.shape;
  const x = Float32Array.from({ length: c * h * w }, (_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
  let total = 0;
  let totalCpu = 0;
  let setup = 0;
  let channelsDone = 0;
  for (const layer of convLayers(g)) {
    const t0 = performance.now();
    const s = await ort.InferenceSession.create(exportAttribution(g, { target: 'conv', layer: layer.index, objective: 'abs_sum' }, 'guided', { passes }), opts);
    const t1 = performance.now();
    setup += t1 - t0;
    const k = layer.channels;
    const chunk = chunkArg === 'all' ? k : Math.min(k, Number(chunkArg));
    const input = new ort.Tensor('float32', x, [1, c, h, w]);
    let layerTime = 0;
    const cpu0 = process.cpuUsage();
    for (let first = 0; first < k; first += chunk) {
      const rows = Math.min(chunk, k - first);
      const sel = new Float32Array(rows * k);
      for (let r = 0; r < rows; r++) sel[r * k + first + r] = 1;
      const t = performance.now();
      await s.run({ input, select: new ort.Tensor('float32', sel, [rows, k]) });
      layerTime += performance.now() - t;
    }
    const cpu = process.cpuUsage(cpu0);
    const layerCpu = (cpu.user + cpu.system) / 1000;
    if (layer.index === 4) {
      const sel = new Float32Array(64 * k);
      for (let r = 0; r < 64; r++) sel[r * k + r] = 1;
      const c0 = process.cpuUsage();
      const t = performance.now();
      await s.run({ input, select: new ort.Tensor('float32', sel, [64, k]) });
      const c1 = process.cpuUsage(c0);
      console.log(`layer 4, 64 channels in one run: ${(performance.now() - t).toFixed(0)} ms wall, ${((c1.user + c1.system) / 1000).toFixed(0)} ms cpu`);
    }
    total += layerTime;
    totalCpu += layerCpu;
    channelsDone += k;
    console.log(`layer ${layer.index}: ${k} channels ${(layerTime / 1000).toFixed(2)} s wall, ${(layerCpu / 1000).toFixed(2)} s cpu (session ${(t1 - t0).toFixed(0)} ms)`);
    await s.release();
  }
  console.log(
    `${model} ${form} chunk=${chunkArg}: ${channelsDone} channels in ${(total / 1000).toFixed(2)} s wall (${(totalCpu / 1000).toFixed(2)} s cpu) of runs + ${(setup / 1000).toFixed(2)} s of session creation`,
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
