/**
 * A one-line progress bar on stderr for long streams, drawn only when stderr is a terminal (and
 * not in --json mode, where stdout is for machines and stderr stays quiet).
 */
export interface Progress {
  update(done: number, total: number): void;
  done(): void;
}

const NONE: Progress = { update: () => {}, done: () => {} };

export function progressBar(label: string, enabled: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!enabled || !stream.isTTY) return NONE;
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
