/**
 * `npm run reproduce` command-line options: the full run's limits, the `--quick` smoke test's, and
 * the command line that reproduces a given set of options.
 */
import * as path from 'node:path';

/** The repository root (this file runs as <root>/<dist>/scripts/reproduce/options.js). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

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
  probeIterations: number;
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
        probeIterations: 5,
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
        probeIterations: 30,
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
