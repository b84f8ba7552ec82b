/**
 * Writing an async iterable to a grpc-js server stream, and the AbortSignal of a call.
 *
 * - Backpressure: `write()` returning false waits for 'drain' before pulling the next item, so a slow
 *   client slows the producer instead of filling memory.
 * - The signal fires when the client cancels, when the deadline passes, or when the server cancels
 *   the call (shutdown after the grace period). The producer sees it and stops; its generator is
 *   closed (`return()`), so `finally` blocks in services run.
 */
import { once } from 'node:events';
import type { Deadline, Metadata, ServerWritableStream } from '@grpc/grpc-js';
import { IntrospectError, cancelled } from '../services/errors';

/** What every server call offers (grpc-js does not export its own name for this). */
export interface ServerSurfaceCall {
  readonly metadata: Metadata;
  getDeadline(): Deadline;
  getPath(): string;
  on(event: 'cancelled', listener: () => void): unknown;
  off(event: 'cancelled', listener: () => void): unknown;
}

export interface CallSignal {
  signal: AbortSignal;
  /** Aborts the call from the server side (shutdown). */
  abort(reason: IntrospectError): void;
  /** Removes listeners and timers; call when the call is over. */
  dispose(): void;
}

function deadlineMs(call: ServerSurfaceCall): number {
  const d = call.getDeadline();
  const t = d instanceof Date ? d.getTime() : d;
  return typeof t === 'number' && Number.isFinite(t) ? t : Infinity;
}

/** An AbortSignal for a call: client cancel → cancelled, deadline → deadline-exceeded. */
export function callSignal(call: ServerSurfaceCall): CallSignal {
  const controller = new AbortController();
  const abort = (reason: IntrospectError): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const deadline = deadlineMs(call);
  const fire = (): void => abort(new IntrospectError('deadline-exceeded', 'the call passed its deadline'));
  // grpc-js cancels the call itself when the deadline passes (often just before our timer fires).
  const onCancel = (): void => (Date.now() >= deadline - 20 ? fire() : abort(cancelled('the client cancelled the call')));
  call.on('cancelled', onCancel);
  let timer: NodeJS.Timeout | undefined;
  if (deadline !== Infinity) {
    const left = deadline - Date.now();
    if (left <= 0) fire();
    else timer = setTimeout(fire, Math.min(left, 2 ** 31 - 1));
  }
  return {
    signal: controller.signal,
    abort,
    dispose: () => {
      call.off('cancelled', onCancel);
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * `p`, or the signal's reason if it fires first. The listener is removed when `p` settles, so a long
 * stream does not pile up reactions on one pending promise.
 */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(reasonOf(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reasonOf(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export function reasonOf(signal: AbortSignal): IntrospectError {
  const r: unknown = signal.reason;
  if (r instanceof IntrospectError) return r;
  return cancelled(r instanceof Error ? r.message : 'the call was cancelled');
}

/**
 * Writes every item to the stream, waiting for 'drain' when the stream's buffer is full, and stops
 * (throwing the signal's reason) once the signal fires. Does not end the stream.
 */
export async function writeAll<T>(
  call: ServerWritableStream<unknown, T>,
  items: AsyncIterable<T>,
  signal: AbortSignal,
): Promise<number> {
  const iterator = items[Symbol.asyncIterator]();
  let count = 0;
  try {
    for (;;) {
      const next = await raceAbort(iterator.next(), signal);
      if (next.done) return count;
      if (signal.aborted) throw reasonOf(signal);
      count++;
      if (!call.write(next.value)) {
        await once(call, 'drain', { signal }).catch((err: unknown) => {
          throw signal.aborted ? reasonOf(signal) : err;
        });
      }
    }
  } catch (err) {
    // Close the producer (runs its `finally` once its current step ends); do not wait for it, so
    // the status goes out at once, and ignore what it says while closing.
    Promise.resolve(iterator.return?.()).catch(() => {});
    throw err;
  }
}
