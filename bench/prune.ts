/**
 * The thesis' table 5-1 as a pruning sweep of vgg11_cifar10 on the CIFAR-10 test set (10,000 images):
 * every conv layer × {similarity top, similarity bottom, random × 3 seeds, L1, APoZ} at 40% = 56
 * evaluations, with 2 onnxruntime workers × 1 thread. The server's Prune job (services/jobs/prune.ts)
 * in its two steps: the similarity ranking (method 1, mean class averages, all 10 classes), timed
 * apart, then the evaluations. `--quick`: the same sweep on the first 1,000 test images, similarity
 * from 2 classes (about a tenth of the sweep's work).
 */
import * as path from 'node:path';
import { PRUNE_CRITERIA } from '../services/analysis/pruning-criteria';
import { DatasetRegistry } from '../services/data/registry';
import { OnnxRuntimeEngine } from '../services/engines/onnxruntime/engine';
import { jobContext, type ModelContext } from '../services/jobs/context';
import { pruneEvaluations, pruneRanking, type PruneJob } from '../services/jobs/prune';
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
  const dataset = data.get('cifar10');
  const signal = new AbortController().signal;
  const engine = new OnnxRuntimeEngine({ workers: 2, intraOpThreads: 1 });
  try {
    await engine.ready();
    const mc: ModelContext = { model, kind: 'onnxruntime', engine, forward: (x, n, s) => engine.forward(model.engineModel, x, n, { signal: s }) };
    const classes = quick ? [0, 1] : Array.from({ length: Math.min(dataset.summary.classNames.length, model.engineModel.classes) }, (_, i) => i);
    const job: PruneJob = {
      mc, dataset, split: 'test', layers, fractions: [0.4],
      criteria: [...PRUNE_CRITERIA], randomSeeds: 3, limit, apozImages: 1000,
      similarity: {
        job: {
          mc, dataset, average: { kind: 'mean', split: 'train' }, method: 1, metric: 'cosine', layers, classes,
          attribution: { method: 'guided', objective: 'abs_sum' }, rankImages: 0,
        },
      },
    };
    const ctx = jobContext();
    let t0 = performance.now();
    const ranking = await pruneRanking(ctx, job.similarity, signal);
    record(`similarity values for pruning (${layers.length} layers, ${classes.length} classes), 2 workers`, (performance.now() - t0) / 1000, 's');

    t0 = performance.now();
    const lines: string[] = [];
    let images = 0;
    let baseline = 0;
    for await (const e of pruneEvaluations(job, ranking, signal)) {
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
