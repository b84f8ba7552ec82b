/**
 * `npm run reproduce [-- --quick] [-- --out DIR]`: the thesis reproduction on vgg11_cifar10.
 *
 * Starts the server in this process (model root <shared>/models, data root <shared>/datasets, where
 * <shared> is $INTROSPECT_SHARED or ../shared beside the repository), loads vgg11_cifar10.onnx (its
 * sidecar is picked up), registers CIFAR-10 and, over RPC with the generated client as any other
 * client would:
 *   1. class averages of every kind (mean, top-k, bottom-k, activation maximisation) and their
 *      confidence matrices (thesis fig. 3-12/3-13);
 *   2. similarity curves, methods 1 and 2 (mean averages, thesis fig. 4-18/4-19, 5-1);
 *   3. table 5-1: top vs bottom 40% by similarity per conv layer, beside random (× seeds), L1, APoZ;
 *   4. layer probes (linear classifier on pooled features of each conv layer);
 *   5. the sanity check (cascading re-initialisation, a few depths).
 * Writes DIR/REPRODUCTION.md, DIR/reproduction/*.{png,svg} and DIR/reproduction/results.json
 * (DIR defaults to <repo>/docs).
 *
 * Flags: --quick (tiny limits, for the test), --out DIR, --prune-limit N (test images for the pruning
 * sweep), --probe-train N, --probe-test N, --sanity-depth N, --sanity-classes a,b,c, --sanity-method 1|2;
 * --render RAW re-renders the doc from the raw dump a run leaves in the temporary folder, and
 * --sanity-only RAW re-runs just the sanity check (with this command's sanity flags) into such a dump.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { IntrospectClient } from '../clients/client';
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
} from '../api/generated/introspect/v1/analysis';
import { Split } from '../api/generated/introspect/v1/common';
import { defaultConfig } from '../server/config';
import { createLogger } from '../server/log';
import { startServer } from '../server/server';

/** The repository root (this file runs as <root>/<dist>/scripts/reproduce.js). */
const ROOT = path.resolve(__dirname, '..', '..');
const MODEL_FILE = 'vgg11_cifar10.onnx';
const DATASET_DIR = 'cifar-10-batches-bin';

// The thesis' numbers (full text in shared/seed, Chinese) ---------------------------------------
/** Table 5-1: VGG11_CIFAR, 40% of one layer's neurons zeroed, test accuracy: [top, bottom]. */
const THESIS_TABLE_5_1: Array<[number, number]> = [
  [0.615, 0.547],
  [0.407, 0.705],
  [0.141, 0.739],
  [0.198, 0.74],
  [0.1, 0.739],
  [0.146, 0.739],
  [0.618, 0.739],
  [0.653, 0.739],
];
const THESIS_ACCURACY = 0.739;
const THESIS_TRUNCATED_ACCURACY = 0.8;

// Options ---------------------------------------------------------------------------------------
export interface Options {
  quick: boolean;
  out: string;
  /** Conv layers for similarity, pruning, probes and the sanity check (undefined = all). */
  layers?: number[];
  /** Classes for similarity (undefined = all). */
  similarityClasses?: number[];
  k: number;
  actMaxSteps: number;
  pruneLimit: number;
  apozImages: number;
  randomSeeds: number;
  probeTrain: number;
  probeTest: number;
  probeEpochs: number;
  sanityDepth: number;
  sanityClasses: number[];
  /** Similarity method of the sanity check: 2 sees re-initialised dense layers through φ_i, 1 only layers ≤ j. */
  sanityMethod: 1 | 2;
  /** Quick runs: serve only the first N train / test images (a temporary copy of the batch files). */
  subset?: { train: number; test: number };
}

function intFlag(argv: string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: '${argv[i + 1]}' is not a whole number`);
  return n;
}

function listFlag(argv: string[], name: string): number[] | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  return (argv[i + 1] ?? '').split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: '${s}' is not an index`);
    return n;
  });
}

function sanityMethodFlag(argv: string[]): 1 | 2 | undefined {
  const m = intFlag(argv, '--sanity-method');
  if (m !== undefined && m !== 1 && m !== 2) throw new Error(`--sanity-method: ${m} is not 1 or 2`);
  return m;
}

export function parseOptions(argv: string[]): Options {
  const known = new Set(['--quick', '--out', '--prune-limit', '--probe-train', '--probe-test', '--sanity-depth', '--sanity-classes', '--sanity-method']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!known.has(a)) throw new Error(`unknown argument '${a}' (flags: ${[...known].join(' ')})`);
    if (a !== '--quick') i++;
  }
  const quick = argv.includes('--quick');
  const oi = argv.indexOf('--out');
  const out = path.resolve(oi >= 0 ? argv[oi + 1] ?? '' : path.join(ROOT, 'docs'));
  const base: Options = quick
    ? {
        quick,
        out,
        layers: [0, 3],
        similarityClasses: [0, 1],
        k: 10,
        actMaxSteps: 5,
        pruneLimit: 100,
        apozImages: 50,
        randomSeeds: 2,
        probeTrain: 200,
        probeTest: 100,
        probeEpochs: 5,
        sanityDepth: 1,
        sanityClasses: [0],
        sanityMethod: 2,
        subset: { train: 300, test: 100 },
      }
    : {
        quick,
        out,
        k: 100,
        actMaxSteps: 100,
        pruneLimit: 10000,
        apozImages: 1000,
        randomSeeds: 3,
        probeTrain: 10000,
        probeTest: 10000,
        probeEpochs: 30,
        sanityDepth: 4,
        sanityClasses: [0, 3, 8],
        sanityMethod: 2,
      };
  return {
    ...base,
    pruneLimit: intFlag(argv, '--prune-limit') ?? base.pruneLimit,
    probeTrain: intFlag(argv, '--probe-train') ?? base.probeTrain,
    probeTest: intFlag(argv, '--probe-test') ?? base.probeTest,
    sanityDepth: intFlag(argv, '--sanity-depth') ?? base.sanityDepth,
    sanityClasses: listFlag(argv, '--sanity-classes') ?? base.sanityClasses,
    sanityMethod: sanityMethodFlag(argv) ?? base.sanityMethod,
  };
}

// Figures ---------------------------------------------------------------------------------------
type Rgb = [number, number, number];

function blank(width: number, height: number, fill: Rgb = [255, 255, 255]): PNG {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = fill[0];
    png.data[i * 4 + 1] = fill[1];
    png.data[i * 4 + 2] = fill[2];
    png.data[i * 4 + 3] = 255;
  }
  return png;
}

function fillRect(png: PNG, x0: number, y0: number, w: number, h: number, c: Rgb): void {
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const o = (y * png.width + x) * 4;
      png.data[o] = c[0];
      png.data[o + 1] = c[1];
      png.data[o + 2] = c[2];
    }
  }
}

/** Rows of class-average PNGs (one row per kind), each image scaled up by `scale`, 4 px gaps. */
export function averagesGrid(rows: Buffer[][], scale = 2): Buffer {
  const tiles = rows.map((r) => r.map((b) => PNG.sync.read(b)));
  const tw = Math.max(...tiles.flat().map((t) => t.width)) * scale;
  const th = Math.max(...tiles.flat().map((t) => t.height)) * scale;
  const gap = 4;
  const cols = Math.max(...tiles.map((r) => r.length));
  const out = blank(cols * (tw + gap) + gap, tiles.length * (th + gap) + gap);
  tiles.forEach((row, r) =>
    row.forEach((t, c) => {
      for (let y = 0; y < t.height * scale; y++) {
        for (let x = 0; x < t.width * scale; x++) {
          const si = (Math.floor(y / scale) * t.width + Math.floor(x / scale)) * 4;
          const di = ((gap + r * (th + gap) + y) * out.width + gap + c * (tw + gap) + x) * 4;
          out.data[di] = t.data[si]!;
          out.data[di + 1] = t.data[si + 1]!;
          out.data[di + 2] = t.data[si + 2]!;
        }
      }
    }),
  );
  return PNG.sync.write(out);
}

/** Confidence matrices side by side as heatmaps (white 0 → dark blue 1), `cell` px per entry. */
export function heatmaps(matrices: ConfidenceMatrixResponse[], cell = 14): Buffer {
  const gap = 12;
  const size = (m: ConfidenceMatrixResponse): [number, number] => [m.classes * cell, m.n * cell];
  const width = matrices.reduce((s, m) => s + size(m)[0] + gap, gap);
  const height = Math.max(...matrices.map((m) => size(m)[1])) + 2 * gap;
  const out = blank(width, height);
  let x0 = gap;
  for (const m of matrices) {
    for (let r = 0; r < m.n; r++) {
      for (let c = 0; c < m.classes; c++) {
        const p = Math.min(1, Math.max(0, m.probabilities[r * m.classes + c] ?? 0));
        const colour: Rgb = [Math.round(255 - 247 * p), Math.round(255 - 207 * p), Math.round(255 - 148 * p)];
        fillRect(out, x0 + c * cell, gap + r * cell, cell - 1, cell - 1, colour);
      }
    }
    x0 += size(m)[0] + gap;
  }
  return PNG.sync.write(out);
}

export interface Curve {
  label: string;
  values: number[];
  colour: string;
  width?: number;
  dash?: boolean;
}

/** A line chart as SVG text: x = conv layer, y = value. */
export function curvesSvg(title: string, xLabels: number[], curves: Curve[], yLabel = 'similarity'): string {
  const W = 560;
  const H = 320;
  const L = 60;
  const R = 150;
  const T = 30;
  const B = 40;
  const all = curves.flatMap((c) => c.values).filter(Number.isFinite);
  let lo = Math.min(0, ...all);
  let hi = Math.max(...all, lo + 1e-6);
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const px = (i: number): number => L + (xLabels.length > 1 ? (i * (W - L - R)) / (xLabels.length - 1) : 0);
  const py = (v: number): number => T + ((hi - v) * (H - T - B)) / (hi - lo);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2 - R / 2}" y="18" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`);
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(3)}</text>`);
  }
  xLabels.forEach((x, i) => parts.push(`<text x="${px(i).toFixed(1)}" y="${H - B + 16}" text-anchor="middle">${x}</text>`));
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">conv layer</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 14 ${(T + H - B) / 2})">${escapeXml(yLabel)}</text>`);
  curves.forEach((c, ci) => {
    const pts = c.values.map((v, i) => `${px(i).toFixed(1)},${py(Number.isFinite(v) ? v : 0).toFixed(1)}`).join(' ');
    parts.push(
      `<polyline points="${pts}" fill="none" stroke="${c.colour}" stroke-width="${c.width ?? 1}"${c.dash ? ' stroke-dasharray="4 3"' : ''}/>`,
    );
    const ly = T + 6 + ci * 14;
    parts.push(`<line x1="${W - R + 10}" x2="${W - R + 30}" y1="${ly}" y2="${ly}" stroke="${c.colour}" stroke-width="${c.width ?? 1}"${c.dash ? ' stroke-dasharray="4 3"' : ''}/>`);
    parts.push(`<text x="${W - R + 34}" y="${ly + 4}">${escapeXml(c.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

// Running the parts ------------------------------------------------------------------------------
interface KindRun {
  name: string;
  spec: Partial<AverageSpec>;
  averages: ClassAverage[];
  confidence: ConfidenceMatrixResponse;
}

interface SimilarityRun {
  method: 1 | 2;
  curves: SimilarityCurves;
}

interface PruneRun {
  baseline: number;
  results: PruneResult[];
}

interface ProbesRun {
  modelAccuracy: number;
  results: LayerProbeResult[];
}

export interface Results {
  options: Options;
  machine: string;
  startedAt: string;
  seconds: Record<string, number>;
  model: { name: string; parameters: number; convChannels: number[]; classNames: string[] };
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

function sharedRoot(): string {
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
        average: { kind: AverageKind.AVERAGE_KIND_MEAN },
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
    await client.registerDataset({ name: 'cifar10', path: DATASET_DIR });
    const model = 'vgg11';
    const dataset = 'cifar10';
    const allLayers = info.convLayers.map((l) => l.index);
    const layers = o.layers ?? allLayers;

    if (only === 'sanity') {
      const sanity = await timed('sanity check', () => runSanity(client, o, layers));
      return { options: o, machine: machineDescription(), startedAt, seconds, model: { name: MODEL_FILE, parameters: info.parameters, convChannels: [], classNames: [] }, kinds: [], similarity: [], prune: { baseline: 0, results: [] }, probes: { modelAccuracy: 0, results: [] }, sanity };
    }

    // 1. Class averages and confidence matrices.
    const specs: Array<[string, Partial<AverageSpec>]> = [
      ['mean', { kind: AverageKind.AVERAGE_KIND_MEAN }],
      [`top-${o.k}`, { kind: AverageKind.AVERAGE_KIND_TOP_K, k: o.k }],
      [`bottom-${o.k}`, { kind: AverageKind.AVERAGE_KIND_BOTTOM_K, k: o.k }],
      ['activation max', { kind: AverageKind.AVERAGE_KIND_ACTIVATION_MAX, steps: o.actMaxSteps }],
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
          average: { kind: AverageKind.AVERAGE_KIND_MEAN },
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
        similarity: { average: { kind: AverageKind.AVERAGE_KIND_MEAN }, method: SimilarityMethod.SIMILARITY_METHOD_VS_AVERAGE, classes: o.similarityClasses ?? [] },
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
      for await (const m of client.layerProbes({ model, dataset, layers, trainLimit: o.probeTrain, testLimit: o.probeTest, epochs: o.probeEpochs })) {
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

// The document -----------------------------------------------------------------------------------
const f3 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** Per layer: the mean over classes of the std over the layer's neurons (the thesis' fig. 4-19 curves, averaged). */
function withinLayerStd(c: SimilarityCurves): number[] {
  return c.layerIndices.map((_l, j) => mean(Array.from({ length: c.classes }, (_x, i) => c.std[i * c.layers + j] ?? NaN)));
}

/** The command line that reproduces a run with these options. */
export function commandLine(o: Options): string {
  if (o.quick) return 'npm run reproduce -- --quick';
  const d = parseOptions([]);
  const flags: string[] = [];
  if (o.pruneLimit !== d.pruneLimit) flags.push(`--prune-limit ${o.pruneLimit}`);
  if (o.probeTrain !== d.probeTrain) flags.push(`--probe-train ${o.probeTrain}`);
  if (o.probeTest !== d.probeTest) flags.push(`--probe-test ${o.probeTest}`);
  if (o.sanityDepth !== d.sanityDepth) flags.push(`--sanity-depth ${o.sanityDepth}`);
  if (o.sanityClasses.join(',') !== d.sanityClasses.join(',')) flags.push(`--sanity-classes ${o.sanityClasses.join(',')}`);
  if ((o.sanityMethod ?? 1) !== d.sanityMethod) flags.push(`--sanity-method ${o.sanityMethod ?? 1}`);
  return `npm run reproduce${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}`;
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function resultOf(r: Results, layer: number, c: PruneCriterion): PruneResult | undefined {
  return r.prune.results.find((x) => x.layer === layer && x.criterion === c);
}

/** The statements on what held, computed from the numbers. */
export function findings(r: Results): string[] {
  const out: string[] = [];
  const layers = [...new Set(r.prune.results.map((x) => x.layer))].sort((a, b) => a - b);
  const P = PruneCriterion;
  const rows = layers.map((l) => ({
    l,
    top: resultOf(r, l, P.PRUNE_CRITERION_SIMILARITY_TOP)?.accuracy ?? NaN,
    bottom: resultOf(r, l, P.PRUNE_CRITERION_SIMILARITY_BOTTOM)?.accuracy ?? NaN,
    random: resultOf(r, l, P.PRUNE_CRITERION_RANDOM)?.accuracy ?? NaN,
    l1: resultOf(r, l, P.PRUNE_CRITERION_L1)?.accuracy ?? NaN,
    apoz: resultOf(r, l, P.PRUNE_CRITERION_APOZ)?.accuracy ?? NaN,
  }));
  const n = rows.length;
  const topWorse = rows.filter((x) => x.top < x.bottom);
  out.push(
    `**Top vs bottom 40% (table 5-1).** Removing the most similar 40% hurt more than removing the least similar 40% in ${topWorse.length} of ${n} layers ` +
      `(layers ${topWorse.map((x) => x.l).join(', ') || 'none'}); mean accuracy after top-pruning ${f3(mean(rows.map((x) => x.top)))}, after bottom-pruning ${f3(mean(rows.map((x) => x.bottom)))} ` +
      `(baseline ${f3(r.prune.baseline)}). The thesis had top < bottom in layers 1–7 and the reverse in layer 0, with top-pruning at 0.10–0.41 in layers 1–5 and bottom-pruning at 0.70–0.74.`,
  );
  const thesisSpan = rows.filter((x) => x.l >= 1 && x.l <= 5);
  if (thesisSpan.length > 0) {
    const lo = Math.min(...thesisSpan.map((x) => x.top));
    const hi = Math.max(...thesisSpan.map((x) => x.top));
    out.push(
      `In layers ${thesisSpan.map((x) => x.l).join(', ')} our top-pruned accuracy spans ${f3(lo)}–${f3(hi)} (thesis 0.100–0.407); ` +
        `the drop of that size ${hi <= 0.45 ? 'held' : lo <= 0.45 ? 'held only in part' : 'did not hold'}.`,
    );
  }
  const vs = (name: string, key: 'random' | 'l1' | 'apoz'): string => {
    const worse = rows.filter((x) => x.top < x[key]).length;
    const gentler = rows.filter((x) => x.bottom > x[key]).length;
    return `${name}: top-pruning hurt more in ${worse}/${n} layers, bottom-pruning hurt less in ${gentler}/${n}`;
  };
  out.push(`**Against the baselines at the same 40%.** ${vs('random (mean over seeds)', 'random')}; ${vs('L1 (smallest norms)', 'l1')}; ${vs('APoZ (most zeros)', 'apoz')}.`);

  for (const s of r.similarity) {
    const m = s.curves.meanOverClasses;
    const argmax = m.indexOf(Math.max(...m));
    const li = s.curves.layerIndices;
    const early = m.slice(0, 2);
    const later = m.slice(2);
    const rises = later.length > 0 && Math.max(...early) < Math.max(...later);
    out.push(
      `**Curves, method ${s.method}.** Mean over classes per layer: ${m.map((v) => v.toFixed(3)).join(', ')} (layers ${li.join(', ')}); highest at layer ${li[argmax]}. ` +
        `The thesis' shape (low in layers 0–1, rising, then flat or falling in the deep layers; VGG11_CIFAR peaks at layer 3 in its fig. 5-1): ` +
        `${rises ? `the rise from the first two layers held` : 'the rise from the first two layers did not hold'}` +
        `${later.length > 2 ? `; the last layer is ${m.at(-1)! < Math.max(...later) ? 'below' : 'at'} the peak` : ''}` +
        `${m.length === 8 ? `; change over layers 0–3 ${f3(m[3]! - m[0]!)}, over layers 4–7 ${f3(m[7]! - m[4]!)}` : ''}.`,
    );
  }

  if (r.similarity.length === 2) {
    const [a, b] = r.similarity.map((s) => s.curves.meanOverClasses);
    const higher = a!.filter((v, i) => b![i]! > v).length;
    out.push(
      `**Method 2 vs method 1.** Method 2 (vs the class's own GBP image) is higher than method 1 (vs the average image) in ${higher} of ${a!.length} layers ` +
        `(mean over layers ${f3(mean(b!))} vs ${f3(mean(a!))}); the thesis expected method 2 to give higher values overall (3.3.2).`,
    );
  }

  const s1 = r.similarity[0]?.curves;
  if (s1) {
    const dead = s1.layerIndices.map((_l, j) => mean(Array.from({ length: s1.classes }, (_x, i) => s1.deadCount[i * s1.layers + j] ?? 0)));
    const unchanged = (key: 'l1' | 'apoz'): number[] => rows.filter((x) => Math.abs(x[key] - r.prune.baseline) < 1e-9).map((x) => x.l);
    out.push(
      `**Silent filters.** Neurons whose GBP image at the class average is exactly zero (\"dead\"), mean over classes, per layer: ` +
        `${s1.layerIndices.map((l, j) => `${l}: ${dead[j]!.toFixed(0)}/${r.model.convChannels[l] ?? '?'}`).join(', ')}. ` +
        `L1 left the accuracy exactly at the baseline in layers ${unchanged('l1').join(', ') || 'none'} and APoZ in layers ${unchanged('apoz').join(', ') || 'none'}: ` +
        `zeroing 40% of those layers' filters changed nothing measurable, so they hold at least 40% filters that are near-silent (small weights, or zero after the ReLU) even where their GBP image is not exactly zero. ` +
        `Removing "unimportant" neurons without loss therefore needs no similarity value: L1 or APoZ find them, and a criterion is better only if it beats these.`,
    );
  }

  const depth0 = r.sanity.find((d) => d.depth === 0)?.curves?.meanOverClasses;
  const deepest = r.sanity.at(-1);
  if (depth0 && deepest?.curves && deepest.depth > 0) {
    const kept = deepest.curves.meanOverClasses.map((v, i) => v / (depth0[i] || NaN));
    const sm = r.options.sanityMethod ?? 1;
    out.push(
      `**Sanity check.** The cascade re-initialises from the output down, and a layer-j neuron's GBP image depends only on layers 0..j, so ` +
        `${sm === 1 ? 'method 1 values change only in layers that were themselves re-initialised' : "method 2 sees every re-initialised layer through the class image φ_i"}. ` +
        `With the last ${deepest.depth} weight layer(s) re-initialised (${deepest.reinitialised.join(', ')}), the method-${sm} curve keeps ${kept
        .map((v) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '–'))
        .join(', ')} of the trained model's value per layer (mean ${(mean(kept.filter(Number.isFinite)) * 100).toFixed(0)}%): ` +
        `${mean(kept.filter(Number.isFinite)) > 0.7 ? 'most of the similarity survives re-initialisation, so much of it reflects the image and the architecture rather than learned weights (as Adebayo et al. found for GBP)' : 'a large part of the similarity is lost, so it depends on the learned weights'}.`,
    );
  }

  const diag = (k: KindRun): number => mean(k.confidence.diagonal);
  out.push(
    `**Confidence matrices.** Mean diagonal (softmax of the true class for each class's average): ${r.kinds.map((k) => `${k.name} ${f3(diag(k))}`).join(', ')}. ` +
      `The thesis (fig. 3-12/3-13, MNIST/AlexNet) found plain means misread and its data-driven max-activation (top-k) averages at 1.00 on the diagonal. ` +
      `Plain means misread here too (${r.kinds[0] ? r.kinds[0].confidence.diagonal.filter((p) => p < 0.5).length : 0} of 10 below 0.5: held); ` +
      `${r.kinds[1] ? `top-${r.options.k} averages ${diag(r.kinds[1]) >= 0.9 ? 'were read correctly (held)' : `were not confidently read (mean ${f3(diag(r.kinds[1]))}: did not hold on CIFAR-10, where an average of ${r.options.k} photographs is still a blur)`}` : ''}; ` +
      `the network-driven activation-maximisation images reach the stop probability by construction.`,
  );
  const best = [...r.probes.results].sort((a, b) => b.testAccuracy - a.testAccuracy)[0];
  if (best) {
    out.push(
      `**Layer probes.** The best linear probe is on layer ${best.layer} (test ${f3(best.testAccuracy)}) against the full model's ${f3(r.probes.modelAccuracy)} on the same images. ` +
        `The thesis retrained a 4-conv-layer VGG11 to ${THESIS_TRUNCATED_ACCURACY.toFixed(3)} (> ${THESIS_ACCURACY}); a frozen linear probe is a cheaper and weaker test of the same question.`,
    );
  }
  return out;
}

export function renderDoc(r: Results, figs: { grid: string; heat: string; curves: string[]; sanity?: string }): string {
  const o = r.options;
  const P = PruneCriterion;
  const lines: string[] = [];
  const all = o.layers === undefined;
  lines.push('# Reproducing the thesis on VGG11 / CIFAR-10');
  lines.push('');
  lines.push(
    `Generated by \`${commandLine(o)}\` (scripts/reproduce.ts) on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC. ` +
      `Everything below was computed by the service over gRPC (server started in the process, generated client), on \`${r.model.name}\` ` +
      `(${r.model.parameters.toLocaleString('en-US')} parameters, conv channels ${r.model.convChannels.join('/')}) and the CIFAR-10 files in the shared folder ` +
      `(JPEG-mirror images: see shared/datasets/README.md).`,
  );
  if (o.quick) lines.push('', '**This is a `--quick` run with tiny limits (a smoke test), not the reproduction: its numbers mean nothing.**');
  lines.push('', `Machine: ${r.machine}.`, '');
  lines.push('## What was run', '');
  const params: string[][] = [
    ['class averages', `train split (${o.subset ? `first ${o.subset.train} images of data_batch_1` : 'data_batch_1, 10,000 images'}); mean (rescaled), top-${o.k}, bottom-${o.k}, activation maximisation (≤ ${o.actMaxSteps} steps, step 0.01, stop at p ≥ 0.99); all 10 classes`],
    ['similarity', `methods 1 and 2, cosine, guided backprop, objective sum of abs(z), mean class averages; classes ${o.similarityClasses?.join(', ') ?? 'all 10'}; conv layers ${all ? 'all 8' : o.layers!.join(', ')}`],
    [
      'pruning (table 5-1)',
      `40% of one conv layer zeroed (weights and bias), no fine-tuning; first ${Math.min(o.pruneLimit, o.subset?.test ?? Infinity).toLocaleString('en-US')} test images; criteria: similarity top/bottom (method 1, mean over classes), random (${o.randomSeeds} seeds, mean ± std), L1, APoZ (${o.apozImages} train images)`,
    ],
    ['layer probes', `GAP features of each conv layer, logistic head, ${o.probeEpochs} epochs; ${o.probeTrain.toLocaleString('en-US')} train / ${o.probeTest.toLocaleString('en-US')} test images`],
    ['sanity check', `method ${o.sanityMethod ?? 1}, classes ${o.sanityClasses.join(', ')}, cascading re-initialisation from the last layer, depths 0–${o.sanityDepth}, seed 1`],
  ];
  lines.push(table(['part', 'parameters', 'time (s)'], params.map(([p, q]) => [p!, q!, timeOf(r, p!)])));
  lines.push('', `Command: \`${commandLine(o)}\` (every number is also in [reproduction/results.json](reproduction/results.json)).`);

  lines.push('', '### Differences from the thesis\' setting', '');
  lines.push(
    [
      '- The model is not the thesis\' checkpoint: `vgg11_cifar10.onnx` was trained for this project with the thesis\' optimiser settings but 12 epochs instead of 30 (its sidecar: test accuracy 0.726 on these images; thesis 0.739).',
      '- The CIFAR-10 images come from a JPEG (quality 75) mirror, and only `data_batch_1` (10,000 of the 50,000 training images) is at hand, so the class averages use those 10,000 images.',
      `- The thesis leaves K of the top/bottom-k averages open; we use K = ${o.k}.`,
      `- Table 5-1 is evaluated on the first ${Math.min(o.pruneLimit, o.subset?.test ?? Infinity).toLocaleString('en-US')} of the 10,000 test images${o.pruneLimit < 10000 ? ' (to fit the time available on 2 cores); the thesis used the whole test set' : ''}. The baselines (random, L1, APoZ) are not in the thesis.`,
      '- The thesis\' layer truncation retrains a shortened network; here a linear probe on frozen features asks the same question cheaply, so the numbers are not comparable one to one.',
    ].join('\n'),
  );

  // Averages and confidence.
  lines.push('', '## Class averages and confidence (thesis 3.2, fig. 3-12/3-13)', '');
  lines.push(`![class averages](reproduction/${figs.grid})`, '');
  lines.push(`Rows: ${r.kinds.map((k) => k.name).join(', ')}; columns: ${r.model.classNames.join(', ')}.`, '');
  lines.push(`![confidence matrices](reproduction/${figs.heat})`, '');
  lines.push(`Confidence heatmaps, left to right: ${r.kinds.map((k) => k.name).join(', ')} (row = class average, column = predicted class, white 0 → dark blue 1).`, '');
  lines.push(
    table(
      ['class', ...r.kinds.map((k) => `${k.name}: p(true)`), ...r.kinds.map((k) => `${k.name}: predicted`)],
      r.model.classNames.map((name, i) => [
        name,
        ...r.kinds.map((k) => f3(k.confidence.diagonal[i])),
        ...r.kinds.map((k) => {
          const row = k.confidence.probabilities.slice(i * k.confidence.classes, (i + 1) * k.confidence.classes);
          return r.model.classNames[row.indexOf(Math.max(...row))] ?? '–';
        }),
      ]),
    ),
  );

  // Curves.
  lines.push('', '## Similarity curves (thesis 4.2, fig. 4-18/4-19, 5-1)', '');
  for (const f of figs.curves) lines.push(`![similarity curves](reproduction/${f})`, '');
  lines.push(
    table(
      ['method', ...r.similarity[0]!.curves.layerIndices.map((l) => `layer ${l}`)],
      r.similarity.flatMap((s) => [
        [`${s.method}: mean over classes`, ...s.curves.meanOverClasses.map((v) => f3(v))],
        [`${s.method}: std of class means`, ...s.curves.stdOverClasses.map((v) => f3(v))],
        [`${s.method}: within-layer std (mean over classes)`, ...withinLayerStd(s.curves).map((v) => f3(v))],
      ]),
    ),
  );
  lines.push(
    '',
    'Thesis: on VGG11_ImageNet (method 2, fig. 4-18) the values rise from layers 0–1 and level off in layers 4–7; on VGG11_CIFAR (fig. 5-1) the layer curve peaks at layer 3, which motivated its 4-layer truncation.',
  );

  // Table 5-1.
  lines.push('', '## Table 5-1: pruning 40% of one layer', '');
  lines.push(`Unpruned accuracy on these ${Math.min(o.pruneLimit, o.subset?.test ?? Infinity).toLocaleString('en-US')} test images: **${f3(r.prune.baseline)}** (thesis: ${THESIS_ACCURACY} on its full test set).`, '');
  const layers = [...new Set(r.prune.results.map((x) => x.layer))].sort((a, b) => a - b);
  lines.push(
    table(
      ['layer', 'neurons', 'thesis top', 'thesis bottom', 'top', 'bottom', 'top − bottom', 'random', 'L1', 'APoZ'],
      layers.map((l) => {
        const g = (c: PruneCriterion): PruneResult | undefined => resultOf(r, l, c);
        const rnd = g(P.PRUNE_CRITERION_RANDOM);
        const top = g(P.PRUNE_CRITERION_SIMILARITY_TOP)?.accuracy;
        const bottom = g(P.PRUNE_CRITERION_SIMILARITY_BOTTOM)?.accuracy;
        return [
          String(l),
          String(r.model.convChannels[l] ?? '–'),
          f3(THESIS_TABLE_5_1[l]?.[0]),
          f3(THESIS_TABLE_5_1[l]?.[1]),
          f3(top),
          f3(bottom),
          top !== undefined && bottom !== undefined ? f3(top - bottom) : '–',
          rnd ? `${f3(rnd.accuracy)} ± ${f3(rnd.accuracyStd)}` : '–',
          f3(g(P.PRUNE_CRITERION_L1)?.accuracy),
          f3(g(P.PRUNE_CRITERION_APOZ)?.accuracy),
        ];
      }),
    ),
  );

  // Probes.
  lines.push('', '## Layer probes (thesis 5.1, layer truncation)', '');
  lines.push(`Full model on the same test images: ${f3(r.probes.modelAccuracy)}.`, '');
  lines.push(
    table(
      ['layer', 'features', 'train accuracy', 'test accuracy'],
      r.probes.results.map((p) => [String(p.layer), String(p.features), f3(p.trainAccuracy), f3(p.testAccuracy)]),
    ),
  );

  // Sanity.
  lines.push('', '## Sanity check (cascading re-initialisation)', '');
  if (figs.sanity) lines.push(`![sanity check](reproduction/${figs.sanity})`, '');
  const li = r.sanity[0]?.curves?.layerIndices ?? [];
  lines.push(
    table(
      ['depth', 're-initialised', ...li.map((l) => `layer ${l}`)],
      r.sanity.map((d) => [String(d.depth), d.reinitialised.join(', ') || '(trained)', ...(d.curves?.meanOverClasses ?? []).map((v) => f3(v))]),
    ),
  );

  lines.push('', '## What held and what did not', '');
  for (const s of findings(r)) lines.push(`- ${s}`);
  lines.push('');
  return lines.join('\n');
}

function timeOf(r: Results, part: string): string {
  const key: Record<string, string[]> = {
    'class averages': ['class averages and confidence matrices'],
    similarity: ['similarity method 1', 'similarity method 2'],
    'pruning (table 5-1)': ['pruning sweep (table 5-1)'],
    'layer probes': ['layer probes'],
    'sanity check': ['sanity check'],
  };
  return (key[part] ?? []).map((k) => (r.seconds[k] ?? NaN).toFixed(1)).join(' + ');
}

/** Writes the figures, results.json and REPRODUCTION.md; returns the doc's path. */
export async function writeOutputs(r: Results): Promise<string> {
  const dir = path.join(r.options.out, 'reproduction');
  await fs.promises.mkdir(dir, { recursive: true });
  const grid = 'class-averages.png';
  await fs.promises.writeFile(path.join(dir, grid), averagesGrid(r.kinds.map((k) => k.averages.map((a) => a.image!.png))));
  const heat = 'confidence.png';
  await fs.promises.writeFile(path.join(dir, heat), heatmaps(r.kinds.map((k) => k.confidence)));
  const curves: string[] = [];
  for (const s of r.similarity) {
    const c = s.curves;
    const per: Curve[] = [];
    for (let i = 0; i < c.classes; i++) {
      per.push({ label: `class ${i}`, values: c.mean.slice(i * c.layers, (i + 1) * c.layers), colour: PALETTE[i % PALETTE.length]! });
    }
    per.push({ label: 'mean over classes', values: c.meanOverClasses, colour: '#000', width: 2.5 });
    const file = `similarity-method-${s.method}.svg`;
    await fs.promises.writeFile(path.join(dir, file), curvesSvg(`Similarity method ${s.method}: mean per layer (VGG11, CIFAR-10)`, c.layerIndices, per));
    curves.push(file);
  }
  let sanity: string | undefined;
  if (r.sanity.length > 0) {
    sanity = 'sanity-check.svg';
    const curvesS: Curve[] = r.sanity.map((d, i) => ({
      label: d.depth === 0 ? 'trained' : `${d.depth} re-initialised`,
      values: d.curves?.meanOverClasses ?? [],
      colour: PALETTE[i % PALETTE.length]!,
      width: d.depth === 0 ? 2.5 : 1.5,
      dash: d.depth > 0,
    }));
    await fs.promises.writeFile(path.join(dir, sanity), curvesSvg(`Sanity check: method ${r.options.sanityMethod ?? 1}, mean over classes`, r.sanity[0]?.curves?.layerIndices ?? [], curvesS));
  }
  await fs.promises.writeFile(path.join(dir, 'results.json'), JSON.stringify(toJson(r), null, 1) + '\n');
  const doc = path.join(r.options.out, 'REPRODUCTION.md');
  await fs.promises.writeFile(doc, renderDoc(r, { grid, heat, curves, sanity }));
  return doc;
}

/** results.json: every number, without the image bytes. */
function toJson(r: Results): unknown {
  return {
    ...r,
    kinds: r.kinds.map((k) => ({
      name: k.name,
      spec: k.spec,
      averages: k.averages.map((a) => ({ classIndex: a.classIndex, imagesUsed: a.imagesUsed, meanConfidence: a.meanConfidence, averageConfidence: a.averageConfidence, predictedClass: a.predictedClass, steps: a.steps })),
      confidence: { n: k.confidence.n, classes: k.confidence.classes, probabilities: k.confidence.probabilities, diagonal: k.confidence.diagonal },
    })),
  };
}

/** Reads a raw dump written by an earlier run (Buffers revived). */
async function readRaw(file: string): Promise<Results> {
  return JSON.parse(await fs.promises.readFile(file, 'utf8'), (_k, v: unknown) =>
    v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data) : v,
  ) as Results;
}

/** `argv` without the flag `name` and its value; the value (undefined when the flag is absent). */
function takeFlag(argv: string[], name: string): [string | undefined, string[]] {
  const i = argv.indexOf(name);
  return i < 0 ? [undefined, argv] : [argv[i + 1] ?? '', argv.filter((_a, j) => j !== i && j !== i + 1)];
}

async function main(): Promise<void> {
  const started = Date.now();
  const say = (s: string): void => void process.stdout.write(`reproduce: ${s}\n`);
  // --render RAW: re-render the doc from an earlier run's raw dump (no recomputation);
  // --sanity-only RAW: re-run only the sanity check (with this command's sanity flags) into it.
  const [render, rest1] = takeFlag(process.argv.slice(2), '--render');
  const [sanityOnly, argv] = takeFlag(rest1, '--sanity-only');
  const o = parseOptions(argv);
  let r: Results;
  if (render !== undefined) {
    r = await readRaw(render);
    if (argv.includes('--out')) r.options.out = o.out;
  } else {
    if (sanityOnly !== undefined) {
      const earlier = await readRaw(sanityOnly);
      if (argv.includes('--out')) earlier.options.out = o.out;
      r = await rerunSanity(earlier, o, say);
    } else {
      r = await runReproduction(o, say);
    }
    const raw = path.join(os.tmpdir(), `reproduce-raw-${process.pid}.json`);
    await fs.promises.writeFile(raw, JSON.stringify(r));
    say(`raw results in ${raw} (re-render with --render ${raw})`);
  }
  const doc = await writeOutputs(r);
  say(`wrote ${doc} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`reproduce failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
