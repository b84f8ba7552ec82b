/**
 * Pipelining: asks the source for its next item as soon as the current one is handed out, so that
 * reading batch i+1 (file I/O, decoding) overlaps with the consumer's work on batch i.
 */
export async function* prefetched<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  let finished = false;
  try {
    for (;;) {
      const result = await next;
      if (result.done) {
        finished = true;
        return;
      }
      next = iterator.next();
      yield result.value;
    }
  } finally {
    if (!finished) {
      next.catch(() => undefined);
      await iterator.return?.();
    }
  }
}
