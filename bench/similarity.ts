/**
 * The full similarity analysis of vgg11_cifar10 (issue: 10 classes × 2,752 neurons, methods 1 and 2,
 * mean class averages), with 1 worker × 1 thread and 2 workers × 1 thread, and a cached repeat.
 */
import * as path from 'node:path';
import { classAverages } from '../services/analysis/averages';
import { ResultCache, cacheKey } from '../services/analysis/cache';
import { similarity, type ClassImage, type SimilarityEvent } from '../services/analysis/similarity';
import { DatasetRegistry } from '../services/data/registry';
import { OnnxRuntimeEngine } from '../services/engines/onnxruntime/engine';
import { ModelRegistry } from '../services/models/registry';

type Record = (what: string, value: number, unit: string, note?: string) => void;

export async function similarityBench(shared: string, record: Record, quick: boolean): Promise<void> {
  console.log('similarity analysis, vgg11_cifar10');
  const data = new DatasetRegistry({ dataRoot: path.join(shared, 'datasets') });
  await data.register({ name: 'cifar10', path: 'cifar-10-batches-bin' });
  const models = new ModelRegistry({ modelRoot: path.join(shared, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const model = await models.loadFromPath({ name: 'vgg11', path: 'vgg11_cifar10.onnx' });
  const classes = quick ? [0, 1] : Array.from({ length: 10 }, (_, i) => i);
  for (const workers of [1, 2]) {
    const engine = new OnnxRuntimeEngine({ workers, intraOpThreads: 1 });
    try {
      await engine.ready();
      const forward = (x: Float32Array, n: number, signal?: AbortSignal): Promise<Float32Array> =>
        engine.forward(model.engineModel, x, n, { signal });
      const averages: ClassImage[] = [];
      for await (const a of classAverages({
        dataset: data.get('cifar10'),
        split: 'train',
        preprocessing: model.preprocessing,
        inputShape: model.inputShape,
        forward,
        kind: 'mean',
        classes,
      })) {
        averages.push({ classIndex: a.classIndex, image: a.image });
      }
      const cache = new ResultCache<SimilarityEvent[]>({ maxBytes: 64 << 20, sizeOf: () => 1 << 20 });
      for (const method of [1, 2] as const) {
        const key = cacheKey({ modelSha256: model.sha256, dataset: 'cifar10', params: { method, classes } });
        const t0 = performance.now();
        const events: SimilarityEvent[] = [];
        for await (const e of similarity({ engine, model: model.engineModel, averages, method })) events.push(e);
        const s = (performance.now() - t0) / 1000;
        cache.set(key, events);
        record(`similarity vgg11_cifar10, ${classes.length} classes × 2,752 neurons, method ${method}, ${workers} worker(s) × 1 thread`, s, 's');
        const t1 = performance.now();
        const hit = cache.get(key);
        if (!hit) throw new Error('cache miss on a repeat');
        let n = 0;
        for (const e of hit) if (e.kind === 'layer') n++;
        if (workers === 1) record(`similarity, cached repeat (method ${method}, ${n} (class, layer) results)`, (performance.now() - t1) * 1000, 'µs');
      }
    } finally {
      await engine.close();
    }
  }
}
