/**
 * Client streams that stop sending: each message must arrive within the idle timeout, or the call ends
 * with DEADLINE_EXCEEDED naming the limit, and whatever it holds (a heavy slot, buffered upload chunks)
 * is released. A client that sends a header and then nothing no longer keeps a slot until its TCP
 * connection closes.
 *
 *   for await (const m of idleLimited(call, 30_000, 'UploadModel', signal)) ...
 */
import { IntrospectError } from '../services/errors';
import { reasonOf } from './streaming';

export async function* idleLimited<T>(source: AsyncIterable<T>, idleMs: number | undefined, what: string, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await nextWithin(it, idleMs, what, signal);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    // Stop reading a stream left early (idle, cancelled, or refused by the handler). Not awaited: a
    // call's stream may close only once its status has gone out.
    if (!finished) void Promise.resolve(it.return?.()).catch(() => undefined);
  }
}

function nextWithin<T>(it: AsyncIterator<T>, idleMs: number | undefined, what: string, signal: AbortSignal): Promise<IteratorResult<T>> {
  if (signal.aborted) return Promise.reject(reasonOf(signal));
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const settle = (): void => {
      if (timer) clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      settle();
      reject(reasonOf(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    if (idleMs !== undefined && idleMs > 0) {
      timer = setTimeout(() => {
        settle();
        reject(
          new IntrospectError(
            'deadline-exceeded',
            `${what}: no message from the client for ${idleMs} ms (the limit set by --stream-idle-timeout); the call was ended and its resources released`,
          ),
        );
      }, idleMs);
    }
    it.next().then(
      (r) => {
        settle();
        resolve(r);
      },
      (e: unknown) => {
        settle();
        reject(e);
      },
    );
  });
}
