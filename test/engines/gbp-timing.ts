/**
 * Timing (not a test): guided backprop of every conv channel of vgg11_cifar10 (2,752 neurons) on one CIFAR-10
 * image, one attribute() call per layer, for a few engine settings. Run from the repository root after a build:
 *
 *   node dist/test/engines/gbp-timing.js [onnxruntime:1x1] [onnxruntime:2x1] [onnxruntime:1x2] [tfjs] ...
 *
 * `onnxruntime:WxT` = W workers × T intra-op threads. Each setting: one warm-up pass (graph export, session
 * creation), then the best of two timed passes: wall time, and the process's CPU time over all threads (the
 * steadier measure of the work on a shared machine; wall time shows what parallel workers gain).
 */
import { OnnxRuntimeEngine } from '../../services/engines/onnxruntime/engine';
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import type { Engine } from '../../services/engines/engine';
import { cifarImages, sharedModel } from './support';

async function timeAll(engine: Engine): Promise<{ total: number; cpu: number; perLayer: number[] }> {
  const { model } = sharedModel('vgg11_cifar10.onnx');
  const { data } = cifarImages(7, 1, false);
  const perLayer: number[] = [];
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const l of model.convLayers) {
    const t = performance.now();
    const channels = Array.from({ length: l.channels }, (_, i) => i);
    await engine.attribute(model, data, { kind: 'conv', layer: l.index, channels, objective: 'abs_sum' }, 'guided');
    perLayer.push(Math.round(performance.now() - t));
  }
  const c = process.cpuUsage(c0);
  return { total: Math.round(performance.now() - t0), cpu: Math.round((c.user + c.system) / 1000), perLayer };
}

async function main(): Promise<void> {
  const settings = process.argv.slice(2);
  for (const s of settings.length ? settings : ['onnxruntime:1x1', 'onnxruntime:2x1']) {
    let engine: Engine;
    const m = /^onnxruntime:(\d+)x(\d+)$/.exec(s);
    if (m) engine = new OnnxRuntimeEngine({ workers: Number(m[1]), intraOpThreads: Number(m[2]), log: () => undefined });
    else if (s === 'tfjs') engine = new TfjsEngine({ log: () => undefined });
    else throw new Error(`unknown setting ${s}`);
    try {
      const warm = await timeAll(engine);
      const runs = [await timeAll(engine), await timeAll(engine)];
      const best = runs.reduce((a, b) => (a.total <= b.total ? a : b));
      console.log(
        `${s}: ${(best.total / 1000).toFixed(2)} s wall, ${(best.cpu / 1000).toFixed(2)} s CPU (all threads) for 2,752 channels ` +
          `(warm-up pass ${(warm.total / 1000).toFixed(2)} s); per layer ms ${best.perLayer.join(' ')}`,
      );
    } finally {
      await engine.close();
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
