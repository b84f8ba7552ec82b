/**
 * Runs shards (independent server-streaming calls) across several servers: a bounded number at a
 * time per server, retrying a shard that fails with a transient status on another server (bounded
 * attempts, exponential backoff), and reporting each shard's progress live and its messages once
 * its attempt has completed (a failed attempt's messages are dropped).
 *
 * Transient: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ABORTED, and CANCELLED when it was
 * not this job that cancelled (a server shutting down cancels its calls). Any other status ends
 * the whole job at once with that status.
 */
import { status } from '@grpc/grpc-js';
import type { CallOpts, IntrospectClient } from './client';

const RETRYABLE: ReadonlySet<number> = new Set([status.UNAVAILABLE, status.RESOURCE_EXHAUSTED, status.DEADLINE_EXCEEDED, status.ABORTED, status.CANCELLED]);

export interface RetryPolicy {
  /** Concurrent shards per server (default 2). */
  perServer?: number;
  /** Attempts per shard, all servers together (default 4). */
  maxAttempts?: number;
  /** Wait before a shard's first retry, doubled on each further one (default 200 ms). */
  backoffMs?: number;
  /** Longest wait between attempts (default 5000 ms). */
  maxBackoffMs?: number;
}

export interface RetryEvent {
  shard: string;
  server: string;
  attempt: number;
  code: number;
  details: string;
  delayMs: number;
}

export interface ShardSpec<Req> {
  /** Names the shard in errors and retry events, e.g. "class 3 layer 1". */
  label: string;
  request: Req;
}

export interface ShardProgress {
  done: number;
  total: number;
}

export type ShardEvent<Res> =
  /** `message` is the message that carried it (absent when a retry resets the shard's progress). */
  | { kind: 'progress'; shard: number; progress: ShardProgress; message?: Res }
  | { kind: 'done'; shard: number; messages: Res[]; server: string };

export interface ShardFailure {
  shard: string;
  attempts: number;
  code: number;
  details: string;
}

/** A sharded job that failed: `code`/`details` as a gRPC error has them (the CLI prints them). */
export class ShardedJobError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly failures: ShardFailure[],
  ) {
    super(`${status[code] ?? code}: ${details}`);
    this.name = 'ShardedJobError';
  }
}

export interface RunShardsOptions<Req, Res> extends RetryPolicy {
  clients: IntrospectClient[];
  shards: ShardSpec<Req>[];
  /** Starts one attempt of a shard on a client. */
  call: (client: IntrospectClient, request: Req, o: CallOpts) => AsyncIterable<Res>;
  /** The progress a message carries, if any. */
  progressOf: (msg: Res) => ShardProgress | undefined;
  /** Per attempt: deadline and metadata (its signal is ignored; use `signal`). */
  callOpts?: CallOpts;
  signal?: AbortSignal;
  onRetry?: (e: RetryEvent) => void;
  /** When one target stands for several replicas (round_robin), a failure does not rest that target. */
  restServerOnFailure?: boolean;
}

interface ShardState {
  status: 'pending' | 'running' | 'done' | 'failed';
  attempts: number;
  notBefore: number;
  /** Servers an attempt failed on. */
  failedOn: Set<number>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function errorOf(err: unknown): { code: number; details: string } {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  if (typeof e?.code === 'number') return { code: e.code, details: typeof e.details === 'string' ? e.details : String(e.message) };
  return { code: status.UNKNOWN, details: err instanceof Error ? err.message : String(err) };
}

/** A queue an async generator drains while workers push into it. */
class EventQueue<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private error: unknown;

  push(item: T): void {
    this.items.push(item);
    this.poke();
  }

  end(error?: unknown): void {
    this.ended = true;
    this.error = error;
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *drain(): AsyncGenerator<T> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/**
 * Runs every shard; yields live progress and each shard's messages when it completes. Throws a
 * ShardedJobError naming the shards that failed on every attempt (after the others finished), or at
 * once on a status that is not transient. Leaving the loop early cancels the calls in flight.
 */
export async function* runShards<Req, Res>(o: RunShardsOptions<Req, Res>): AsyncGenerator<ShardEvent<Res>> {
  const servers = o.clients.length;
  if (servers === 0) throw new Error('sharding needs at least one server');
  const perServer = Math.max(1, o.perServer ?? 2);
  const maxAttempts = Math.max(1, o.maxAttempts ?? 4);
  const backoffMs = o.backoffMs ?? 200;
  const maxBackoffMs = o.maxBackoffMs ?? 5000;
  const restServer = o.restServerOnFailure ?? servers > 1;
  const delay = (n: number): number => Math.min(maxBackoffMs, backoffMs * 2 ** Math.max(0, n - 1));

  const job = new AbortController();
  const onOuterAbort = (): void => job.abort(o.signal?.reason);
  if (o.signal?.aborted) job.abort(o.signal.reason);
  else o.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const state: ShardState[] = o.shards.map(() => ({ status: 'pending', attempts: 0, notBefore: 0, failedOn: new Set() }));
  const failures: ShardFailure[] = [];
  const serverRestUntil = new Array<number>(servers).fill(0);
  const serverFailures = new Array<number>(servers).fill(0);
  const queue = new EventQueue<ShardEvent<Res>>();
  let changed: () => void = () => {};
  let change = new Promise<void>((r) => (changed = r));
  const notify = (): void => {
    const c = changed;
    change = new Promise<void>((r) => (changed = r));
    c();
  };
  let fatal: unknown;

  const pick = (server: number, now: number): number | undefined => {
    for (let i = 0; i < state.length; i++) {
      const s = state[i];
      if (s.status !== 'pending' || s.notBefore > now) continue;
      // Not on a server the shard failed on, until it has failed on all of them.
      if (!s.failedOn.has(server) || s.failedOn.size >= servers) return i;
    }
    return undefined;
  };

  const attempt = async (server: number, i: number): Promise<void> => {
    const s = state[i];
    const shard = o.shards[i];
    s.status = 'running';
    s.attempts++;
    const messages: Res[] = [];
    try {
      for await (const msg of o.call(o.clients[server], shard.request, { ...o.callOpts, signal: job.signal })) {
        messages.push(msg);
        const p = o.progressOf(msg);
        if (p) queue.push({ kind: 'progress', shard: i, progress: p, message: msg });
      }
      s.status = 'done';
      serverFailures[server] = 0;
      queue.push({ kind: 'done', shard: i, messages, server: o.clients[server].address });
    } catch (err) {
      if (job.signal.aborted) {
        s.status = 'failed';
        return;
      }
      const { code, details } = errorOf(err);
      if (!RETRYABLE.has(code)) {
        s.status = 'failed';
        fatal ??= new ShardedJobError(code, `shard ${shard.label} on ${o.clients[server].address}: ${details}`, [{ shard: shard.label, attempts: s.attempts, code, details }]);
        job.abort();
        return;
      }
      s.failedOn.add(server);
      if (restServer) {
        serverFailures[server]++;
        serverRestUntil[server] = Date.now() + delay(serverFailures[server]);
      }
      if (s.attempts >= maxAttempts) {
        s.status = 'failed';
        failures.push({ shard: shard.label, attempts: s.attempts, code, details });
        return;
      }
      const wait = delay(s.attempts);
      s.status = 'pending';
      s.notBefore = Date.now() + wait;
      // Its progress starts again on the next attempt.
      queue.push({ kind: 'progress', shard: i, progress: { done: 0, total: 0 } });
      o.onRetry?.({ shard: shard.label, server: o.clients[server].address, attempt: s.attempts, code, details, delayMs: wait });
    } finally {
      notify();
    }
  };

  const worker = async (server: number): Promise<void> => {
    while (!job.signal.aborted) {
      const now = Date.now();
      if (!state.some((s) => s.status === 'pending' || s.status === 'running')) return;
      const i = serverRestUntil[server] > now ? undefined : pick(server, now);
      if (i === undefined) {
        const waits = state.filter((s) => s.status === 'pending').map((s) => s.notBefore - now);
        waits.push(serverRestUntil[server] - now);
        const next = Math.max(5, Math.min(...waits.filter((w) => w > 0), maxBackoffMs));
        await Promise.race([change, sleep(next)]);
        continue;
      }
      await attempt(server, i);
    }
  };

  const workers: Promise<void>[] = [];
  for (let s = 0; s < servers; s++) for (let k = 0; k < perServer; k++) workers.push(worker(s));
  void Promise.all(workers).then(() => {
    if (fatal !== undefined) return queue.end(fatal);
    if (job.signal.aborted) return queue.end(o.signal?.reason ?? new Error('the sharded job was cancelled'));
    if (failures.length > 0) {
      const last = failures[failures.length - 1];
      const list = failures.map((f) => `${f.shard} (${status[f.code] ?? f.code}: ${f.details})`).join('; ');
      return queue.end(new ShardedJobError(last.code, `${failures.length} of ${o.shards.length} shards failed after ${maxAttempts} attempts: ${list}`, failures));
    }
    queue.end();
  });

  try {
    yield* queue.drain();
  } finally {
    o.signal?.removeEventListener('abort', onOuterAbort);
    job.abort();
    await Promise.allSettled(workers);
  }
}
