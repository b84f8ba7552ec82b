/**
 * Structured logging: one JSON object per line on stderr (or any sink), with a level threshold.
 *   {"time":"2024-01-01T00:00:00.000Z","level":"info","msg":"server started","port":50051}
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  fields?: LogFields;
}

export function isLogLevel(s: string): s is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(s);
}

/** Errors become {name, message, stack}; everything else goes through JSON as is. */
function serialisable(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message, stack: value.stack };
    const kind = (value as { kind?: unknown }).kind;
    if (kind !== undefined) out.kind = kind;
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => void process.stderr.write(line));
  const base = opts.fields ?? {};
  const threshold = RANK[opts.level];
  const emit = (level: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[level] < threshold) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg };
    for (const [k, v] of Object.entries(base)) record[k] = serialisable(v);
    if (fields) for (const [k, v] of Object.entries(fields)) record[k] = serialisable(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ time: record.time, level, msg, note: 'fields were not serialisable' });
    }
    write(line + '\n');
  };
  return {
    level: opts.level,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ level: opts.level, write, fields: { ...base, ...fields } }),
  };
}
