/**
 * Trains one zoo model with scripts/train/train.py (Debian's /usr/bin/python3 with python3-torch),
 * checkpointing after every epoch so that an interrupted run, or a later run asking for more epochs,
 * resumes where the last one stopped and ends bit-identical to an uninterrupted run.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ZooEntry } from './catalogue';
import { epochsOf, readSidecar } from './sidecar';

export const PYTHON = '/usr/bin/python3';

export interface TrainOptions {
  /** The repository root (train.py is at scripts/train/train.py under it). */
  root: string;
  dir: string;
  epochs: number;
  threads: number;
  trainLimit?: number;
  testLimit?: number;
  /** CIFAR-10 binary folder (train.py's --cifar-dir). */
  cifarDir: string;
  say: (line: string) => void;
}

export type TrainOutcome = 'up to date' | 'trained' | 'resumed';

/** The train.py arguments that make this entry's run (the same ones every time, so checkpoints resume). */
export function trainArgs(entry: ZooEntry, o: TrainOptions): string[] {
  const args = ['scripts/train/train.py', '--arch', entry.arch, '--dataset', entry.dataset, '--epochs', String(o.epochs),
    '--threads', String(o.threads), '--out', path.join(o.dir, `${entry.name}.onnx`),
    '--checkpoint', path.join(o.dir, `${entry.name}.pt`)];
  if (entry.dataset === 'cifar10') args.push('--cifar-dir', o.cifarDir);
  if (o.trainLimit) args.push('--train-limit', String(o.trainLimit));
  if (o.testLimit) args.push('--test-limit', String(o.testLimit));
  return args;
}

/**
 * Runs train.py unless the zoo folder already holds the model trained for `epochs` epochs or more. Its output
 * is appended to `<dir>/<name>.log`; epoch summaries are passed to `say`.
 */
export async function trainEntry(entry: ZooEntry, o: TrainOptions): Promise<TrainOutcome> {
  const onnx = path.join(o.dir, `${entry.name}.onnx`);
  const sidecar = readSidecar(path.join(o.dir, `${entry.name}.json`));
  if (sidecar && fs.existsSync(onnx) && epochsOf(sidecar) >= o.epochs) return 'up to date';
  fs.mkdirSync(o.dir, { recursive: true });
  const log = fs.openSync(path.join(o.dir, `${entry.name}.log`), 'a');
  let resumed = false;
  try {
    const args = trainArgs(entry, o);
    fs.writeSync(log, `# ${new Date().toISOString()} ${PYTHON} ${args.join(' ')}\n`);
    const child = spawn(PYTHON, args, { cwd: o.root, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const take = (chunk: Buffer): void => {
      fs.writeSync(log, chunk);
      tail = (tail + chunk.toString('utf8')).slice(-4000);
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.startsWith('resumed from')) resumed = true;
        if (/^(epoch \d+:|resumed from)/.test(line)) o.say(`${entry.name}: ${line}`);
      }
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(`${entry.name}: train.py exited with ${code}:\n${tail.trim().split('\n').slice(-8).join('\n')}`);
  } finally {
    fs.closeSync(log);
  }
  return resumed ? 'resumed' : 'trained';
}
