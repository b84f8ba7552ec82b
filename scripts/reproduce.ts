/**
 * `npm run reproduce [-- --quick] [-- --out DIR]`: the thesis reproduction on vgg11_cifar10.
 *
 * Over RPC (server started in this process, generated client):
 *   1. class averages of every kind (mean, top-k, bottom-k, activation maximisation) and their
 *      confidence matrices (thesis fig. 3-12/3-13);
 *   2. similarity curves, methods 1 and 2 (mean averages, thesis fig. 4-18/4-19, 5-1);
 *   3. table 5-1: top vs bottom 40% by similarity per conv layer, beside random (× seeds), L1, APoZ;
 *   4. layer probes (linear classifier on pooled features of each conv layer);
 *   5. the sanity check (cascading re-initialisation, a few depths).
 * Writes DIR/REPRODUCTION.md, DIR/reproduction/*.{png,svg} and DIR/reproduction/results.json
 * (DIR defaults to <repo>/docs).
 *
 * The parts, one job each (scripts/reproduce/): options.ts (flags), run.ts (the RPC calls),
 * verdicts.ts (whether each claim held, with its rule), markdown.ts (the document), figures.ts,
 * output.ts (files), thesis.ts (the thesis' numbers).
 *
 * Flags: --quick (tiny limits, for the test), --out DIR, --prune-limit N (test images for the pruning
 * sweep), --probe-train N, --probe-test N, --sanity-depth N, --sanity-classes a,b,c, --sanity-method 1|2;
 * --render RAW re-renders the doc from the raw dump a run leaves in the temporary folder, and
 * --sanity-only RAW re-runs just the sanity check (with this command's sanity flags) into such a dump.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseOptions } from './reproduce/options';
import { readRaw, writeOutputs } from './reproduce/output';
import { readTrainingFacts, rerunSanity, runReproduction, type Results } from './reproduce/run';

export { commandLine, parseOptions, type Options } from './reproduce/options';
export { runReproduction, type Results } from './reproduce/run';

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
  r.training ??= await readTrainingFacts();
  const doc = await writeOutputs(r);
  say(`wrote ${doc} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`reproduce failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
