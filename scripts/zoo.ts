/**
 * `npm run zoo [-- flags]`: the thesis' reference models (AlexNet and VGG11 for 32×32 on MNIST,
 * Fashion-MNIST and CIFAR-10), trained where they are missing and measured again by the service.
 *
 * 1. Each model not in <shared>/models ($INTROSPECT_SHARED or ../shared) is trained into the zoo
 *    folder by scripts/train/train.py with the thesis' settings, checkpointing every epoch: an
 *    interrupted run resumes, and asking for more epochs later extends a run (bit-identical to one
 *    uninterrupted run of that length). A model already trained for the epochs asked is left alone.
 * 2. Every model, trained or shared, is loaded by a server on loopback and evaluated on its test
 *    split through the generated client; the accuracy must match the one PyTorch wrote into the sidecar.
 * 3. Writes <dir>/zoo.json and <dir>/ZOO.md (sources, epochs, both accuracies, per class, sha256).
 * Exits 1 when a training run fails or a measurement disagrees.
 *
 * Flags: --dir DIR (default $INTROSPECT_ZOO or <repo>/out/zoo), --only a,b (zoo names, default all),
 * --epochs N (default 30, the thesis), --threads N (training threads, default 2), --verify-only,
 * --train-shared (train the models the shared folder holds as well, e.g. its 1-epoch vgg11_mnist),
 * --train-limit N / --test-limit N (first N images; smoke runs), --cifar-dir DIR (default
 * <shared>/datasets/cifar-10-batches-bin). Serve the zoo with INTROSPECT_MODEL_ROOT=<dir>.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { place, selectEntries, ZOO, type Placement } from './zoo/catalogue';
import { rowOf, writeRecord } from './zoo/report';
import { PYTHON, trainEntry } from './zoo/train';
import { verifyAll } from './zoo/verify';

/** The repository root (this file runs as <root>/<dist>/scripts/zoo.js). */
const ROOT = path.resolve(__dirname, '..', '..');

export interface ZooOptions {
  dir: string;
  only: string[];
  epochs: number;
  threads: number;
  verifyOnly: boolean;
  /** Train the models the shared folder holds too (into the zoo folder, which then wins). */
  trainShared: boolean;
  trainLimit?: number;
  testLimit?: number;
  cifarDir: string;
  shared: string;
}

export function parseZooOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): ZooOptions {
  const shared = path.resolve(env.INTROSPECT_SHARED ?? path.join(ROOT, '..', 'shared'));
  const o: ZooOptions = {
    dir: path.resolve(env.INTROSPECT_ZOO ?? path.join(ROOT, 'out', 'zoo')),
    only: [],
    epochs: 30,
    threads: 2,
    verifyOnly: false,
    trainShared: false,
    cifarDir: path.join(shared, 'datasets', 'cifar-10-batches-bin'),
    shared,
  };
  const positive = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: '${v ?? ''}' is not a positive whole number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--dir': o.dir = path.resolve(value()); break;
      case '--only': o.only = value().split(',').filter((s) => s); break;
      case '--epochs': o.epochs = positive(flag, value()); break;
      case '--threads': o.threads = positive(flag, value()); break;
      case '--train-limit': o.trainLimit = positive(flag, value()); break;
      case '--test-limit': o.testLimit = positive(flag, value()); break;
      case '--cifar-dir': o.cifarDir = path.resolve(value()); break;
      case '--verify-only': o.verifyOnly = true; break;
      case '--train-shared': o.trainShared = true; break;
      default:
        throw new Error(`unknown argument '${flag}' (flags: --dir --only --epochs --threads --verify-only --train-shared --train-limit --test-limit --cifar-dir)`);
    }
  }
  selectEntries(o.only); // names checked before anything runs
  if (o.verifyOnly && o.trainShared) throw new Error('--verify-only trains nothing; --train-shared cannot go with it');
  return o;
}

export async function runZoo(o: ZooOptions, say: (s: string) => void): Promise<boolean> {
  const sharedModels = path.join(o.shared, 'models');
  const placements: Placement[] = [];
  for (const entry of selectEntries(o.only)) {
    const p = place(entry, o.dir, fs.existsSync(sharedModels) && !o.trainShared ? sharedModels : undefined);
    if (entry.dataset === 'cifar10' && !fs.existsSync(o.cifarDir)) {
      say(`${entry.name}: skipped, CIFAR-10 is not at ${o.cifarDir} (--cifar-dir, or INTROSPECT_SHARED)`);
      continue;
    }
    placements.push(p);
  }
  let ok = true;
  const ready: Placement[] = [];
  for (const p of placements) {
    if (p.source === 'shared') {
      say(`${p.entry.name}: from ${p.dir}`);
      ready.push(p);
      continue;
    }
    if (o.verifyOnly) {
      if (fs.existsSync(path.join(p.dir, `${p.entry.name}.onnx`))) ready.push(p);
      else say(`${p.entry.name}: not trained yet (${path.join(p.dir, p.entry.name + '.onnx')})`);
      continue;
    }
    say(`${p.entry.name}: training for ${o.epochs} epoch${o.epochs > 1 ? 's' : ''} into ${o.dir} (log: ${p.entry.name}.log)`);
    try {
      const outcome = await trainEntry(p.entry, { root: ROOT, dir: o.dir, epochs: o.epochs, threads: o.threads, trainLimit: o.trainLimit, testLimit: o.testLimit, cifarDir: o.cifarDir, say });
      say(`${p.entry.name}: ${outcome}`);
      ready.push(p);
    } catch (e) {
      say(`${(e as Error).message}`);
      ok = false;
    }
  }
  if (ready.length === 0) return ok;
  const measured = new Date().toISOString();
  const rows = (await verifyAll(ready, { cifarDir: o.cifarDir, testLimit: o.testLimit, say })).map((v) => rowOf(v, measured));
  for (const r of rows.filter((x) => !x.agrees)) {
    say(`${r.name}: the service measures ${r.serviceAccuracy} but the sidecar says ${r.sidecarAccuracy}`);
    ok = false;
  }
  for (const f of writeRecord(o.dir, rows, ZOO.map((z) => z.name))) say(`wrote ${f}`);
  return ok;
}

if (require.main === module) {
  let options: ZooOptions;
  try {
    options = parseZooOptions(process.argv.slice(2));
    if (!options.verifyOnly && !fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: bash scripts/setup.sh --with-training`);
  } catch (e) {
    process.stderr.write(`zoo: ${(e as Error).message}\n`);
    process.exit(2);
  }
  runZoo(options, (s) => process.stdout.write(`zoo: ${s}\n`)).then(
    (ok) => process.exit(ok ? 0 : 1),
    (e: Error) => {
      process.stderr.write(`zoo: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
