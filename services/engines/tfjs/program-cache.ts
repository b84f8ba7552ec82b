/**
 * Interpreter programs (./interpret.ts) of built graphs, by key (model id + graph kind), least recently used
 * first out above a byte bound. A program in use by a running call is disposed only when that call ends.
 */
import type { TensorGraph } from '../../graph/tensor-graph';
import { TensorProgram } from './interpret';

interface Entry {
  program: TensorProgram;
  users: number;
  evicted: boolean;
}

export interface ProgramLease {
  program: TensorProgram;
  release(): void;
}

export class ProgramCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxBytes: number) {}

  /** The program for `key`, built from `build()` on a miss; call `release` when done with it. */
  acquire(key: string, build: () => TensorGraph): ProgramLease {
    let e = this.entries.get(key);
    if (e) this.entries.delete(key);
    else e = { program: new TensorProgram(build()), users: 0, evicted: false };
    this.entries.set(key, e);
    e.users++;
    this.evict(key);
    const entry = e;
    let released = false;
    return {
      program: entry.program,
      release: () => {
        if (released) return;
        released = true;
        entry.users--;
        if (entry.evicted && entry.users === 0) entry.program.dispose();
      },
    };
  }

  /** Drops the entries whose key matches (a released model). */
  drop(predicate: (key: string) => boolean): void {
    for (const [k, e] of [...this.entries]) if (predicate(k)) this.remove(k, e);
  }

  clear(): void {
    this.drop(() => true);
  }

  private evict(keep: string): void {
    let held = [...this.entries.values()].reduce((s, e) => s + e.program.bytes, 0);
    for (const [k, e] of [...this.entries]) {
      if (held <= this.maxBytes) break;
      if (k === keep) continue;
      held -= e.program.bytes;
      this.remove(k, e);
    }
  }

  private remove(k: string, e: Entry): void {
    this.entries.delete(k);
    e.evicted = true;
    if (e.users === 0) e.program.dispose();
  }
}
