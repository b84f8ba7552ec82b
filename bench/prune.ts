/**
 * The thesis' table 5-1 as a pruning sweep of vgg11_cifar10 on the CIFAR-10 test set (10,000 images):
 * every conv layer × {similarity top, similarity bottom, random × 3 seeds, L1, APoZ} at 40% = 56
 * evaluations, with 2 onnxruntime workers × 1 thread. The similarity values (method 1, mean class
 * averages, all 10 classes) are computed once beforehand and timed apart. `--quick`: the same sweep on the
 * first 1,000 test images, similarity from 2 classes (about a tenth of the sweep's work).
 */
import * as path from 'node:path';
import { classAverages } from '../services/analysis/averages';
import { prune, similarityRanking } from '../services/analysis/pruning';
import { collectSimilarity, type ClassImage } from '../services/analysis/similarity';
import { DatasetRegistry } from '../services/data/registry';
import { OnnxRuntimeEngine } from '../services/engines/onnxruntime/engine';
import { ModelRegistry } from '../services/models/registry';

type Record = (what: string, value: number, unit: string, note?: string) => void;

export async function pruneBench(shared: string, record: Record, quick: boolean): Promise<void> {
  console.log('pruning sweep (table 5-1), vgg11_cifar10');
  const data = new DatasetRegistry({ dataRoot: path.join(shared, 'datasets') });
  await data.register({ name: 'cifar10', path: 'cifar-10-batches-bin' });
  const models = new ModelRegistry({ modelRoot: path.join(shared, 'models'), cacheBytes: 1 << 30, maxUploadBytes: 1 << 30 });
  const model = await models.loadFromPath({ name: 'vgg11', path: 'vgg11_cifar10.onnx' });
  const layers = model.engineModel.convLayers.map((l) => l.index);
  const limit = quick ? 1000 : 10000;
  const engine = new OnnxRuntimeEngine({ workers: 2, intraOpThreads: 1 });
  try {
    await engine.ready();
    let t0 = performance.now();
    const averages: ClassImage[] = [];
    for await (const a of classAverages({
      dataset: data.get('cifar10'),
      split: 'train',
      preprocessing: model.preprocessing,
      inputShape: model.inputShape,
      forward: (x, n, signal) => engine.forward(model.engineModel, x, n, { signal }),
      kind: 'mean',
      classes: quick ? [0, 1] : undefined,
    })) {
      averages.push({ classIndex: a.classIndex, image: a.image });
    }
    const sim = await collectSimilarity({ engine, model: model.engineModel, averages, method: 1, layers });
    record(`similarity values for pruning (${layers.length} layers, ${averages.length} classes), 2 workers`, (performance.now() - t0) / 1000, 's');

    t0 = performance.now();
    const lines: string[] = [];
    let images = 0;
    let baseline = 0;
    for await (const e of prune({
      engine,
      model: model.engineModel,
      dataset: data.get('cifar10'),
      split: 'test',
      preprocessing: model.preprocessing,
      inputShape: model.inputShape,
      layers,
      fractions: [0.4],
      similarityValues: similarityRanking(sim.layers),
      randomSeeds: 3,
      limit,
      apozImages: 1000,
    })) {
      images = e.done;
      if (e.kind === 'baseline') baseline = e.baseline.accuracy;
      if (e.kind === 'result') {
        const r = e.result;
        lines.push(`    layer ${r.layer} ${r.criterion.padEnd(17)} ${r.accuracy.toFixed(4)}${r.seeds > 1 ? ` ± ${r.accuracyStd.toFixed(4)}` : ''}`);
      }
    }
    const s = (performance.now() - t0) / 1000;
    console.log(`    baseline ${baseline.toFixed(4)}\n${lines.join('\n')}`);
    record(`pruning sweep, ${layers.length} layers × 7 evaluations of ${limit} images (+ baseline, APoZ on 1,000), 2 workers × 1 thread`, s, 's', `${images / limit} evaluations, ${(images / s).toFixed(0)} images/s through the model (a split layer's prefix counted once)`);
  } finally {
    await engine.close();
  }
}
