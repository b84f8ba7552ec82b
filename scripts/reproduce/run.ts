/**
 * Running the reproduction's analyses: starts the server in this process (model root <shared>/models,
 * data root <shared>/datasets, where <shared> is $INTROSPECT_SHARED or ../shared beside the
 * repository), loads vgg11_cifar10.onnx (its sidecar is picked up), registers CIFAR-10 and calls the
 * analyses over RPC with the generated client, as any other client would. Returns the raw answers;
 * it judges nothing and writes nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IntrospectClient } from '../../clients/client';
import {
  AverageKind,
  PruneCriterion,
  SimilarityMethod,
  type AverageSpec,
  type ClassAverage,
  type ConfidenceMatrixResponse,
  type LayerProbeResult,
  type PruneResult,
  type SanityCheckResponse,
  type SimilarityCurves,
} from '../../api/generated/introspect/v1/analysis';
import { Split } from '../../api/generated/introspect/v1/common';
import { defaultConfig } from '../../server/config';
import { createLogger } from '../../server/log';
import { startServer } from '../../server/server';
import { trainingFacts, type TrainingFacts } from '../../services/models/sidecar';
import { ROOT, type Options } from './options';

export const MODEL_FILE = 'vgg11_cifar10.onnx';
/** The model's JSON sidecar beside it: preprocessing for the server, training facts for the doc. */
export const SIDECAR_FILE = 'vgg11_cifar10.json';
const DATASET_DIR = 'cifar-10-batches-bin';

/**
 * Every class average of the reproduction is computed on the train split (the images the model
 * learned from, as in the thesis), said explicitly rather than left to the server's default.
 */
export const AVERAGE_SPLIT = Split.SPLIT_TRAIN;

export interface KindRun {
  name: string;
  spec: Partial<AverageSpec>;
  averages: ClassAverage[];
  confidence: ConfidenceMatrixResponse;
}

export interface SimilarityRun {
  method: 1 | 2;
  curves: SimilarityCurves;
}

export interface PruneRun {
  baseline: number;
  results: PruneResult[];
}

export interface ProbesRun {
  modelAccuracy: number;
  results: LayerProbeResult[];
}

export interface Results {
  options: Options;
  machine: string;
  startedAt: string;
  seconds: Record<string, number>;
  model: { name: string; parameters: number; convChannels: number[]; classNames: string[] };
  /** How the model was trained, from its sidecar (absent in raw dumps of older runs: read again on render). */
  training?: TrainingFacts;
  /** Images the data set served per split (a --quick run serves a subset). */
  images?: { train: number; test: number };
  kinds: KindRun[];
  similarity: SimilarityRun[];
  prune: PruneRun;
  probes: ProbesRun;
  sanity: SanityCheckResponse[];
}

function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}, onnxruntime engine (CPU)`;
}

/** The model's training facts (epochs, test accuracy, training images) as its sidecar records them. */
export async function readTrainingFacts(shared = sharedRoot()): Promise<TrainingFacts> {
  const file = path.join(shared, 'models', SIDECAR_FILE);
  return trainingFacts(await fs.promises.readFile(file, 'utf8'), file);
}

export function sharedRoot(): string {
  return path.resolve(process.env.INTROSPECT_SHARED ?? path.join(ROOT, '..', 'shared'));
}

const CIFAR_RECORD = 1 + 3 * 32 * 32;

/** A data root holding the first records of the shared CIFAR-10 batch files (quick runs). */
async function subsetDataRoot(shared: string, subset: { train: number; test: number }): Promise<string> {
  const root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-reproduce-'));
  const src = path.join(shared, 'datasets', DATASET_DIR);
  const dst = path.join(root, DATASET_DIR);
  await fs.promises.mkdir(dst);
  await fs.promises.copyFile(path.join(src, 'batches.meta.txt'), path.join(dst, 'batches.meta.txt'));
  for (const [file, n] of [['data_batch_1.bin', subset.train], ['test_batch.bin', subset.test]] as const) {
    const fh = await fs.promises.open(path.join(src, file), 'r');
    try {
      const buf = Buffer.alloc(n * CIFAR_RECORD);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      await fs.promises.writeFile(path.join(dst, file), buf.subarray(0, bytesRead));
    } finally {
      await fh.close();
    }
  }
  return root;
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The sanity check's depths 0..sanityDepth (cascading re-initialisation from the output down). */
function runSanity(client: IntrospectClient, o: Options, layers: number[]): Promise<SanityCheckResponse[]> {
  return collect(
    client.sanityCheck({
      similarity: {
        model: 'vgg11',
        dataset: 'cifar10',
        average: { kind: AverageKind.AVERAGE_KIND_MEAN, split: AVERAGE_SPLIT },
        method: o.sanityMethod === 1 ? SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE : SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP,
        layers,
        classes: o.sanityClasses,
      },
      seed: 1,
      maxDepth: o.sanityDepth,
    }),
  ).then((msgs) => msgs.filter((m) => m.curves !== undefined));
}

/** Re-runs only the sanity check with `o`'s sanity settings and puts it into an earlier run's results. */
export async function rerunSanity(r: Results, o: Options, say: (s: string) => void): Promise<Results> {
  const partial = await runReproduction({ ...r.options, sanityDepth: o.sanityDepth, sanityClasses: o.sanityClasses, sanityMethod: o.sanityMethod }, say, 'sanity');
  return { ...r, options: partial.options, sanity: partial.sanity, seconds: { ...r.seconds, 'sanity check': partial.seconds['sanity check']! } };
}

export async function runReproduction(o: Options, say: (s: string) => void, only?: 'sanity'): Promise<Results> {
  const shared = sharedRoot();
  const tempRoot = o.subset ? await subsetDataRoot(shared, o.subset) : undefined;
  const log = createLogger({ level: 'warn' });
  const server = await startServer(
    {
      ...defaultConfig(),
      host: '127.0.0.1',
      port: 0,
      metricsPort: null,
      modelRoot: path.join(shared, 'models'),
      dataRoot: tempRoot ?? path.join(shared, 'datasets'),
      gracePeriodMs: 0,
      logLevel: 'warn',
      workers: 2,
      intraOpThreads: 1,
    },
    { log },
  );
  const client = new IntrospectClient(`127.0.0.1:${server.port}`);
  const seconds: Record<string, number> = {};
  const timed = async <T>(part: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    say(`${part}…`);
    const r = await f();
    seconds[part] = (performance.now() - t0) / 1000;
    say(`${part} done in ${seconds[part]!.toFixed(1)} s`);
    return r;
  };
  try {
    const startedAt = new Date().toISOString();
    const info = await client.loadModel({ name: 'vgg11', path: MODEL_FILE });
    const data = await client.registerDataset({ name: 'cifar10', path: DATASET_DIR });
    const count = (split: Split): number => data.splits.find((x) => x.split === split)?.count ?? 0;
    const images = { train: count(Split.SPLIT_TRAIN), test: count(Split.SPLIT_TEST) };
    const training = await readTrainingFacts(shared);
    const model = 'vgg11';
    const dataset = 'cifar10';
    const allLayers = info.convLayers.map((l) => l.index);
    const layers = o.layers ?? allLayers;

    if (only === 'sanity') {
      const sanity = await timed('sanity check', () => runSanity(client, o, layers));
      return { options: o, machine: machineDescription(), startedAt, seconds, model: { name: MODEL_FILE, parameters: info.parameters, convChannels: [], classNames: [] }, training, images, kinds: [], similarity: [], prune: { baseline: 0, results: [] }, probes: { modelAccuracy: 0, results: [] }, sanity };
    }

    // 1. Class averages and confidence matrices.
    const specs: Array<[string, Partial<AverageSpec>]> = [
      ['mean', { kind: AverageKind.AVERAGE_KIND_MEAN, split: AVERAGE_SPLIT }],
      [`top-${o.k}`, { kind: AverageKind.AVERAGE_KIND_TOP_K, k: o.k, split: AVERAGE_SPLIT }],
      [`bottom-${o.k}`, { kind: AverageKind.AVERAGE_KIND_BOTTOM_K, k: o.k, split: AVERAGE_SPLIT }],
      ['activation max', { kind: AverageKind.AVERAGE_KIND_ACTIVATION_MAX, steps: o.actMaxSteps, split: AVERAGE_SPLIT }],
    ];
    const kinds = await timed('class averages and confidence matrices', async () => {
      const out: KindRun[] = [];
      for (const [name, spec] of specs) {
        const averages = await collect(client.classAverages({ model, dataset, average: spec, png: true }));
        const confidence = await client.confidenceMatrix({ model, dataset, average: spec });
        out.push({ name, spec, averages, confidence });
      }
      return out;
    });

    // 2. Similarity curves, methods 1 and 2.
    const similarity: SimilarityRun[] = [];
    for (const method of [1, 2] as const) {
      const curves = await timed(`similarity method ${method}`, async () => {
        let summary: SimilarityCurves | undefined;
        for await (const m of client.similarity({
          model,
          dataset,
          average: { kind: AverageKind.AVERAGE_KIND_MEAN, split: AVERAGE_SPLIT },
          method: method === 1 ? SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE : SimilarityMethod.SIMILARITY_METHOD_VS_CLASS_GBP,
          layers,
          classes: o.similarityClasses ?? [],
        })) {
          if (m.item?.$case === 'summary') summary = m.item.value;
        }
        if (!summary) throw new Error(`similarity method ${method}: no summary in the stream`);
        return summary;
      });
      similarity.push({ method, curves });
    }

    // 3. Table 5-1 with baselines.
    const prune = await timed('pruning sweep (table 5-1)', async () => {
      const run: PruneRun = { baseline: 0, results: [] };
      for await (const m of client.prune({
        model,
        dataset,
        split: Split.SPLIT_TEST,
        layers,
        fractions: [0.4],
        criteria: [],
        similarity: { average: { kind: AverageKind.AVERAGE_KIND_MEAN, split: AVERAGE_SPLIT }, method: SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE, classes: o.similarityClasses ?? [] },
        randomSeeds: o.randomSeeds,
        limit: o.pruneLimit,
        apozImages: o.apozImages,
      })) {
        if (m.baselineAccuracy) run.baseline = m.baselineAccuracy;
        if (m.result) {
          run.results.push(m.result);
          say(`  layer ${m.result.layer} ${PruneCriterion[m.result.criterion]} ${m.result.accuracy.toFixed(4)}`);
        }
      }
      return run;
    });

    // 4. Layer probes.
    const probes = await timed('layer probes', async () => {
      const run: ProbesRun = { modelAccuracy: 0, results: [] };
      for await (const m of client.layerProbes({ model, dataset, layers, trainLimit: o.probeTrain, testLimit: o.probeTest, epochs: o.probeIterations })) {
        if (m.result) {
          run.results.push(m.result);
          run.modelAccuracy = m.modelAccuracy;
        }
      }
      return run;
    });

    // 5. Sanity check.
    const sanity = await timed('sanity check', () => runSanity(client, o, layers));

    return {
      options: o,
      machine: machineDescription(),
      startedAt,
      seconds,
      model: { name: MODEL_FILE, parameters: info.parameters, convChannels: info.convLayers.map((l) => l.channels), classNames: info.classNames },
      training,
      images,
      kinds,
      similarity,
      prune,
      probes,
      sanity,
    };
  } finally {
    client.close();
    await server.close(0);
    if (tempRoot) await fs.promises.rm(tempRoot, { recursive: true, force: true });
  }
}
