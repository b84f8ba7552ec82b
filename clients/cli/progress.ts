/**
 * Progress of long streams on stderr: a one-line bar redrawn in place when stderr is a terminal,
 * plain lines otherwise (CI, pipes, log files), at most one per PLAIN_EVERY_MS or per tenth (PLAIN_STEPS) of
 * the total, each with done/total and the time elapsed. `--quiet` turns both off.
 */
export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

export const NO_PROGRESS: Progress = { update: () => {}, done: () => {} };

/** Plain lines: at most one per this many milliseconds ... */
export const PLAIN_EVERY_MS = 2000;
/** ... unless another 1/PLAIN_STEPS of the total is done. */
export const PLAIN_STEPS = 10;

/** A bar redrawn in place (`\r`) on a terminal. */
export function progressBar(label: string, stream: { write(text: string): unknown; columns?: number }): Progress {
  const started = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 40));
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const fill = Math.round(frac * width);
      const secs = (now - started) / 1000;
      const rate = secs > 0 ? done / secs : 0;
      const text = `${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total}${rate > 0 ? ` ${rate.toFixed(rate >= 100 ? 0 : 1)}/s` : ''}`;
      stream.write(`\r${text}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}

/**
 * Plain progress lines, `label: done/total (pct%), elapsed s`: the first update, then whenever
 * PLAIN_EVERY_MS have passed or the done fraction crossed another 1/PLAIN_STEPS, and the last one.
 * @param now the clock (milliseconds), for tests
 */
export function progressLines(label: string, write: (line: string) => void, now: () => number = Date.now): Progress {
  const started = now();
  let lastAt = -Infinity;
  let lastStep = -1;
  let pending: [number, number] | undefined;
  const emit = (done: number, total: number, t: number): void => {
    const pct = total > 0 ? ` (${((100 * done) / total).toFixed(0)}%)` : '';
    const line = `${label}: ${done}/${total}${pct}, ${((t - started) / 1000).toFixed(1)} s`;
    write(line + '\n');
    lastAt = t;
    lastStep = total > 0 ? Math.floor((done * PLAIN_STEPS) / total) : lastStep;
    pending = undefined;
  };
  return {
    update(done, total) {
      const t = now();
      const step = total > 0 ? Math.floor((done * PLAIN_STEPS) / total) : lastStep;
      if (t - lastAt >= PLAIN_EVERY_MS || step > lastStep) emit(done, total, t);
      else pending = [done, total];
    },
    done() {
      // The final count, unless it was the last line printed.
      if (pending) emit(pending[0], pending[1], now());
    },
  };
}
