/**
 * A pool of onnxruntime worker threads. Jobs name a graph by key; the pool sends a graph's bytes to a worker
 * the first time that worker runs it, remembers which keys each worker holds (evicting the least recently
 * used once their graphs' bytes pass `sessionBytesPerWorker`), prefers idle workers that already hold the key,
 * and queues the rest.
 * When a call's signal fires its queued jobs are dropped and it rejects at once (a running job finishes its
 * native call in the worker and the result is discarded).
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { IntrospectError, cancelled, failedPrecondition, throwIfAborted } from '../../errors';
import type { FromWorker, OrtDevice, TensorMessage, ToWorker, WorkerConfig } from './protocol';

export interface PoolOptions {
  workers: number;
  intraOpThreads: number;
  device: OrtDevice;
  /** Graph bytes (weights, mostly) of the sessions one worker keeps; the newest is kept even if larger. */
  sessionBytesPerWorker: number;
  log: (message: string) => void;
  /** Told how long each job waited in the queue for a worker, in seconds (for metrics). */
  onQueueWait?: (seconds: number) => void;
}

export interface PoolJob {
  key: string;
  /** The graph's ONNX bytes; called only when the chosen worker lacks the key. */
  model: () => Uint8Array;
  /** Buffers are transferred to the worker: pass arrays the caller no longer needs. */
  feeds: Record<string, TensorMessage>;
  fetches: string[];
}

/** Counters since the pool started (for metrics and tests). */
export interface PoolCounters {
  /** Jobs handed to a worker. */
  dispatched: number;
  /** Jobs whose worker answered (result or error). */
  completed: number;
  /** Times a graph's bytes were sent to a worker. */
  graphsSent: number;
}

export interface PoolStatus {
  provider: OrtDevice;
  note: string;
}

interface Pending {
  job: PoolJob;
  /** process.hrtime.bigint() when it was queued. */
  queuedAt: bigint;
  resolve: (out: Record<string, TensorMessage>) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Keys whose sessions this worker holds, least recently used first. */
  keys: Array<{ key: string; bytes: number }>;
  busy: Pending | null;
  busyId: number;
}

export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;
  private readonly readyPromise: Promise<PoolStatus>;
  private current: PoolStatus;
  readonly counters: PoolCounters = { dispatched: 0, completed: 0, graphsSent: 0 };

  constructor(private readonly opts: PoolOptions) {
    this.current = { provider: opts.device, note: 'workers starting' };
    const readies: Array<Promise<PoolStatus>> = [];
    for (let i = 0; i < opts.workers; i++) readies.push(this.spawn(i));
    this.readyPromise = Promise.all(readies).then((all) => {
      const fellBack = all.find((s) => s.note !== '');
      this.current = fellBack ?? all[0]!;
      if (fellBack) opts.log(`onnxruntime: ${fellBack.note}`);
      return this.current;
    });
    // Avoid an unhandled rejection when nobody awaits ready(); run() surfaces the error.
    this.readyPromise.catch(() => undefined);
  }

  get size(): number {
    return this.slots.length;
  }

  status(): PoolStatus {
    return this.current;
  }

  ready(): Promise<PoolStatus> {
    return this.readyPromise;
  }

  /** Runs one job. */
  async run(job: PoolJob, signal?: AbortSignal): Promise<Record<string, TensorMessage>> {
    let out: Record<string, TensorMessage> = {};
    await this.runAll([job], signal, (_, o) => (out = o));
    return out;
  }

  /**
   * Queues every job (oldest first, spread over idle workers) and calls `onResult` as each completes. The first
   * error, or the signal firing, rejects at once: queued jobs of this call are dropped (running ones finish in
   * their worker and are ignored).
   */
  async runAll(
    jobs: PoolJob[],
    signal: AbortSignal | undefined,
    onResult: (index: number, outputs: Record<string, TensorMessage>) => void,
  ): Promise<void> {
    if (this.closed) throw failedPrecondition('the onnxruntime engine is closed');
    throwIfAborted(signal);
    await this.readyPromise;
    throwIfAborted(signal);
    if (jobs.length === 0) return;
    await new Promise<void>((resolve, reject) => {
      let left = jobs.length;
      let settled = false;
      const mine: Pending[] = [];
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        for (const p of mine) {
          const i = this.queue.indexOf(p);
          if (i >= 0) this.queue.splice(i, 1);
        }
        reject(e);
      };
      const onAbort = (): void => fail(abortError(signal!));
      jobs.forEach((job, index) => {
        mine.push({
          job,
          queuedAt: process.hrtime.bigint(),
          resolve: (out) => {
            if (settled) return;
            try {
              onResult(index, out);
            } catch (e) {
              fail(e as Error);
              return;
            }
            if (--left === 0) {
              settled = true;
              signal?.removeEventListener('abort', onAbort);
              resolve();
            }
          },
          reject: fail,
        });
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(...mine);
      this.pump();
    });
  }

  /** Drops these sessions from every worker. */
  release(predicate: (key: string) => boolean): void {
    for (const s of this.slots) {
      const keys = s.keys.map((k) => k.key).filter(predicate);
      if (keys.length === 0) continue;
      s.keys = s.keys.filter((k) => !predicate(k.key));
      const msg: ToWorker = { type: 'release', keys };
      s.worker.postMessage(msg);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new IntrospectError('cancelled', 'the onnxruntime engine was closed');
    for (const p of this.queue.splice(0)) p.reject(err);
    for (const s of this.slots) s.busy?.reject(err);
    await Promise.all(this.slots.map((s) => closeWorker(s.worker)));
  }

  // -------------------------------------------------------------------------------------------------------

  private spawn(index: number): Promise<PoolStatus> {
    const config: WorkerConfig = { intraOpThreads: this.opts.intraOpThreads, device: this.opts.device };
    const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: config });
    const slot: Slot = { worker, keys: [], busy: null, busyId: 0 };
    this.slots[index] = slot;
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          started = true;
          resolve({ provider: msg.provider, note: msg.note });
          this.pump();
          return;
        }
        this.settleSlot(slot, msg);
      });
      worker.on('error', (e) => {
        if (!started) reject(new IntrospectError('internal', `onnxruntime worker failed to start: ${e.message}`));
        this.workerDied(index, slot, e);
      });
      worker.on('exit', (code) => {
        if (!started) reject(new IntrospectError('internal', `onnxruntime worker exited with code ${code} while starting`));
        else if (!this.closed && this.slots[index] === slot) this.workerDied(index, slot, new Error(`exit code ${code}`));
      });
    });
  }

  private workerDied(index: number, slot: Slot, e: Error): void {
    if (this.closed || this.slots[index] !== slot) return;
    this.opts.log(`onnxruntime: worker ${index} died (${e.message}); starting a new one`);
    const p = slot.busy;
    slot.busy = null;
    p?.reject(new IntrospectError('internal', `onnxruntime worker died: ${e.message}`));
    void slot.worker.terminate();
    this.spawn(index).catch((err: Error) => this.opts.log(`onnxruntime: could not restart worker ${index}: ${err.message}`));
  }

  private settleSlot(slot: Slot, msg: FromWorker): void {
    if (msg.type === 'ready' || msg.id !== slot.busyId || !slot.busy) return;
    const p = slot.busy;
    slot.busy = null;
    this.counters.completed++;
    if (msg.type === 'result') p.resolve(msg.outputs);
    else {
      // A failed load leaves no session behind.
      if (msg.message.startsWith('onnxruntime could not load')) slot.keys = slot.keys.filter((k) => k.key !== p.job.key);
      p.reject(new IntrospectError(msg.kind, msg.message));
    }
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const idle = this.slots.filter((s) => !s.busy);
      if (idle.length === 0) return;
      // Oldest job first; the idle worker that already holds its graph if there is one.
      const p = this.queue[0]!;
      const slot = idle.find((s) => s.keys.some((k) => k.key === p.job.key)) ?? idle[0]!;
      this.queue.shift();
      this.dispatch(slot, p);
    }
  }

  private dispatch(slot: Slot, p: Pending): void {
    const { job } = p;
    this.opts.onQueueWait?.(Number(process.hrtime.bigint() - p.queuedAt) / 1e9);
    let model: Uint8Array | undefined;
    const evict: string[] = [];
    const at = slot.keys.findIndex((k) => k.key === job.key);
    let entry: { key: string; bytes: number };
    if (at >= 0) entry = slot.keys.splice(at, 1)[0]!;
    else {
      try {
        model = job.model();
      } catch (e) {
        p.reject(e as Error);
        return;
      }
      entry = { key: job.key, bytes: model.byteLength };
      let held = slot.keys.reduce((sum, k) => sum + k.bytes, 0);
      while (slot.keys.length > 0 && held + entry.bytes > this.opts.sessionBytesPerWorker) {
        const old = slot.keys.shift()!;
        held -= old.bytes;
        evict.push(old.key);
      }
    }
    slot.keys.push(entry);
    slot.busy = p;
    this.counters.dispatched++;
    if (model) this.counters.graphsSent++;
    slot.busyId = this.nextId++;
    const msg: ToWorker = { type: 'run', id: slot.busyId, key: job.key, model, evict, feeds: job.feeds, fetches: job.fetches };
    const transfer = [...new Set(Object.values(job.feeds).map((t) => t.data.buffer as ArrayBuffer))];
    slot.worker.postMessage(msg, transfer);
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof IntrospectError) return reason;
  return cancelled(reason instanceof Error ? reason.message : 'the request was cancelled');
}

/** How long a worker may take to finish its current run and release its sessions before it is terminated. */
const CLOSE_GRACE_MS = 10_000;

/**
 * Asks a worker to finish what it is running, release its sessions and end; terminates it only if it
 * has not ended within the grace period. (Terminating a worker while onnxruntime is inside a native
 * call can abort the whole process.)
 */
async function closeWorker(worker: Worker): Promise<void> {
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  try {
    const msg: ToWorker = { type: 'close' };
    worker.postMessage(msg);
  } catch {
    return; // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_GRACE_MS)));
  const outcome = await Promise.race([exited.then(() => 'exited' as const), late]);
  clearTimeout(timer);
  if (outcome === 'late') await worker.terminate();
}
