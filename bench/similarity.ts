/**
 * The full similarity analysis of vgg11_cifar10 (issue: 10 classes × 2,752 neurons, methods 1 and 2,
 * mean class averages), with 1 worker × 1 thread and 2 workers × 1 thread, and a cached repeat: the
 * server's Similarity job (services/jobs/similarity.ts) with its result caches.
 */
import * as path from 'node:path';
import { DatasetRegistry } from '../services/data/registry';
import { OnnxRuntimeEngine } from '../services/engines/onnxruntime/engine';
import { collectAverages, type AverageSettings } from '../services/jobs/averages';
import { jobContext, type ModelContext } from '../services/jobs/context';
import { runSimilarity, type SimilarityJob } from '../services/jobs/similarity';
import { ModelRegistry } from '../services/models/registry';

type Record = (what: string, value: number, unit: string, note?: string) => void;

export async function similarityBench(shared: string, record: Record, quick: boolean): Promise<void> {
  console.log('similarity analysis, vgg11_cifar10');
  const data = new DatasetRegistry({ dataRoot: path.join(shared, 'datasets') });
  await data.register({ name: 'cifar10', path: 'cifar-10-batches-bin' });
  const models = new ModelRegistry({ modelRoot: path.join(shared, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const model = await models.loadFromPath({ name: 'vgg11', path: 'vgg11_cifar10.onnx' });
  const classes = quick ? [0, 1] : Array.from({ length: 10 }, (_, i) => i);
  const dataset = data.get('cifar10');
  const average: AverageSettings = { kind: 'mean', split: 'train' };
  const signal = new AbortController().signal;
  for (const workers of [1, 2]) {
    const engine = new OnnxRuntimeEngine({ workers, intraOpThreads: 1 });
    try {
      await engine.ready();
      const forward = (x: Float32Array, n: number, s?: AbortSignal): Promise<Float32Array> => engine.forward(model.engineModel, x, n, { signal: s });
      const mc: ModelContext = { model, kind: 'onnxruntime', engine, forward };
      const ctx = jobContext();
      // the class averages first, untimed (the job then takes them from its cache)
      await collectAverages(ctx, { mc, dataset, settings: average, classes, score: false }, signal);
      for (const method of [1, 2] as const) {
        const job: SimilarityJob = {
          mc, dataset, average, method, metric: 'cosine', layers: model.engineModel.convLayers.map((l) => l.index), classes,
          attribution: { method: 'guided', objective: 'abs_sum' }, rankImages: 0,
        };
        const t0 = performance.now();
        for await (const e of runSimilarity(ctx, job, signal)) if (e.cached) throw new Error('the first run came from the cache');
        const s = (performance.now() - t0) / 1000;
        record(`similarity vgg11_cifar10, ${classes.length} classes × 2,752 neurons, method ${method}, ${workers} worker(s) × 1 thread`, s, 's');
        const t1 = performance.now();
        let n = 0;
        for await (const e of runSimilarity(ctx, job, signal)) {
          if (!e.cached) throw new Error('cache miss on a repeat');
          if (e.event.kind === 'layer') n++;
        }
        if (workers === 1) record(`similarity, cached repeat (method ${method}, ${n} (class, layer) results)`, (performance.now() - t1) * 1000, 'µs');
      }
    } finally {
      await engine.close();
    }
  }
}
