/**
 * Server configuration from command-line flags and environment variables (flags win).
 * `parseConfig` is pure: it takes argv and env and returns the config or a ConfigError.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { engineRegistry } from '../services/engines';
import type { EngineKind } from '../services/engines/engine';
import type { OrtDevice } from '../services/engines/onnxruntime/devices';
import { isLogLevel, type LogLevel } from './log';

export type Device = OrtDevice;

export interface ServerConfig {
  host: string;
  /** gRPC port; 0 = any free port. */
  port: number;
  /** Prometheus `/metrics` and `/healthz` port; 0 = any free port; null = disabled. */
  metricsPort: number | null;
  modelRoot: string;
  dataRoot: string;
  /** Model cache bound (model file size + weights), bytes. */
  cacheBytes: number;
  maxUploadBytes: number;
  /** onnxruntime worker threads; undefined = the engine's default. */
  workers?: number;
  /** intra-op threads per worker; undefined = the engine's default. */
  intraOpThreads?: number;
  device: Device;
  /** Serve even when a requested GPU device is unavailable and onnxruntime fell back to the CPU. */
  allowCpuFallback: boolean;
  defaultEngine: EngineKind;
  /** How long running calls may continue after shutdown starts. */
  gracePeriodMs: number;
  logLevel: LogLevel;
  // Production hardening (server/auth.ts, server/tls.ts, server/limits.ts) ---------------------
  /** File of accepted bearer tokens, one per line; undefined = no authentication. */
  authTokenFile?: string;
  /** PEM certificate chain and key: serve TLS when both are set. */
  tlsCert?: string;
  tlsKey?: string;
  /** PEM CA bundle: require client certificates signed by it (mutual TLS). */
  tlsClientCa?: string;
  /** Concurrent heavy streams (Evaluate and the analysis sweeps); undefined = 2 × onnxruntime workers. */
  maxHeavyStreams?: number;
  /** Largest gRPC message the server accepts (upload chunks, Predict tensors). */
  maxReceiveBytes: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface Option {
  flag: string;
  env: string;
  arg: string;
  help: string;
  /** A switch: given alone it means 'true' (`--flag`); `--flag=false` or the environment can say false. */
  switch?: boolean;
  apply(config: ServerConfig, value: string, source: string): void;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export function defaultConfig(): ServerConfig {
  return {
    host: '0.0.0.0',
    port: 50051,
    metricsPort: 9464,
    modelRoot: path.resolve('models'),
    dataRoot: path.resolve('data'),
    cacheBytes: 2 * GiB,
    maxUploadBytes: 512 * MiB,
    device: 'cpu',
    allowCpuFallback: false,
    // The registered engine of highest priority (services/engines/index.ts).
    defaultEngine: engineRegistry.names()[0]!,
    gracePeriodMs: 30_000,
    logLevel: 'info',
    maxReceiveBytes: 16 * MiB,
  };
}

/** "1048576", "512MiB", "2GiB", "1.5G", "100k" → bytes (binary multiples). */
export function parseBytes(value: string, source: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(value);
  if (!m) throw new ConfigError(`${source}: '${value}' is not a size (examples: 1048576, 512MiB, 2GiB)`);
  const unit = (m[2] ?? '').toLowerCase();
  const mult = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? GiB : unit === 't' ? 1024 * GiB : 1;
  const bytes = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ConfigError(`${source}: '${value}' must be a positive size`);
  return bytes;
}

/** "30s", "500ms", "2m", "10" (seconds) → milliseconds. */
export function parseDuration(value: string, source: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/i.exec(value);
  if (!m) throw new ConfigError(`${source}: '${value}' is not a duration (examples: 30s, 500ms, 2m)`);
  const unit = (m[2] ?? 's').toLowerCase();
  const ms = Number(m[1]) * (unit === 'ms' ? 1 : unit === 'm' ? 60_000 : 1000);
  return Math.round(ms);
}

function parseBool(value: string, source: string): boolean {
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${source}: '${value}' is not true or false`);
}

function parseInteger(value: string, source: string, min: number, max: number): number {
  if (!/^\s*\d+\s*$/.test(value)) throw new ConfigError(`${source}: '${value}' is not a whole number`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${source}: ${n} is outside ${min}..${max}`);
  return n;
}

const OPTIONS: Option[] = [
  {
    flag: '--host',
    env: 'INTROSPECT_HOST',
    arg: 'ADDR',
    help: 'address to listen on (default 0.0.0.0)',
    apply: (c, v) => {
      if (v.trim() === '') throw new ConfigError('--host must not be empty');
      c.host = v.trim();
    },
  },
  {
    flag: '--port',
    env: 'INTROSPECT_PORT',
    arg: 'N',
    help: 'gRPC port, 0 = any free port (default 50051)',
    apply: (c, v, s) => (c.port = parseInteger(v, s, 0, 65535)),
  },
  {
    flag: '--metrics-port',
    env: 'INTROSPECT_METRICS_PORT',
    arg: 'N|off',
    help: 'HTTP port for /metrics and /healthz, 0 = any, off = disabled (default 9464)',
    apply: (c, v, s) => (c.metricsPort = v.trim().toLowerCase() === 'off' ? null : parseInteger(v, s, 0, 65535)),
  },
  {
    flag: '--model-root',
    env: 'INTROSPECT_MODEL_ROOT',
    arg: 'DIR',
    help: 'folder that LoadModel paths are confined to (default ./models)',
    apply: (c, v) => (c.modelRoot = path.resolve(v)),
  },
  {
    flag: '--data-root',
    env: 'INTROSPECT_DATA_ROOT',
    arg: 'DIR',
    help: 'folder that RegisterDataset paths are confined to (default ./data)',
    apply: (c, v) => (c.dataRoot = path.resolve(v)),
  },
  {
    flag: '--cache-bytes',
    env: 'INTROSPECT_CACHE_BYTES',
    arg: 'SIZE',
    help: 'bound of the model cache: file sizes + weights (default 2GiB)',
    apply: (c, v, s) => (c.cacheBytes = parseBytes(v, s)),
  },
  {
    flag: '--max-upload-bytes',
    env: 'INTROSPECT_MAX_UPLOAD_BYTES',
    arg: 'SIZE',
    help: 'largest model UploadModel accepts (default 512MiB)',
    apply: (c, v, s) => (c.maxUploadBytes = parseBytes(v, s)),
  },
  {
    flag: '--workers',
    env: 'INTROSPECT_WORKERS',
    arg: 'N',
    help: 'onnxruntime worker threads (default: the engine decides)',
    apply: (c, v, s) => (c.workers = parseInteger(v, s, 1, 1024)),
  },
  {
    flag: '--threads',
    env: 'INTROSPECT_THREADS',
    arg: 'N',
    help: 'intra-op threads per worker (default: the engine decides)',
    apply: (c, v, s) => (c.intraOpThreads = parseInteger(v, s, 1, 1024)),
  },
  {
    flag: '--device',
    env: 'INTROSPECT_DEVICE',
    arg: engineRegistry.devices().join('|'),
    help: 'where onnxruntime runs (default cpu); a GPU device that is unavailable falls back to cpu and keeps the server NOT_SERVING unless --allow-cpu-fallback',
    apply: (c, v, s) => {
      const d = v.trim().toLowerCase();
      const known = engineRegistry.devices();
      if (!known.includes(d)) throw new ConfigError(`${s}: '${v}' is not one of ${known.join(', ')}`);
      c.device = d as Device;
    },
  },
  {
    flag: '--allow-cpu-fallback',
    env: 'INTROSPECT_ALLOW_CPU_FALLBACK',
    arg: 'true|false',
    switch: true,
    help: 'serve on the CPU when the requested GPU device is unavailable (default false: the server stays NOT_SERVING and says why)',
    apply: (c, v, s) => (c.allowCpuFallback = parseBool(v, s)),
  },
  {
    flag: '--engine',
    env: 'INTROSPECT_ENGINE',
    arg: engineRegistry.names().join('|'),
    help: `engine used when a request does not name one (default ${engineRegistry.names()[0]})`,
    apply: (c, v, s) => {
      const e = v.trim().toLowerCase();
      const known = engineRegistry.names();
      if (!known.includes(e)) throw new ConfigError(`${s}: '${v}' is not a known engine (known: ${known.join(', ')})`);
      c.defaultEngine = e;
    },
  },
  {
    flag: '--grace-period',
    env: 'INTROSPECT_GRACE_PERIOD',
    arg: 'DURATION',
    help: 'on SIGTERM, how long running calls may finish before they are cancelled (default 30s)',
    apply: (c, v, s) => (c.gracePeriodMs = parseDuration(v, s)),
  },
  {
    flag: '--log-level',
    env: 'INTROSPECT_LOG_LEVEL',
    arg: 'LEVEL',
    help: 'debug|info|warn|error|silent (default info)',
    apply: (c, v, s) => {
      const l = v.trim().toLowerCase();
      if (!isLogLevel(l)) throw new ConfigError(`${s}: '${v}' is not one of debug, info, warn, error, silent`);
      c.logLevel = l;
    },
  },
  // Production hardening -----------------------------------------------------------------------
  {
    flag: '--auth-token-file',
    env: 'INTROSPECT_AUTH_TOKEN_FILE',
    arg: 'FILE',
    help: "accepted bearer tokens, one per line; every RPC but health/reflection then needs 'authorization: Bearer <token>'",
    apply: (c, v, s) => (c.authTokenFile = nonEmptyPath(v, s)),
  },
  {
    flag: '--tls-cert',
    env: 'INTROSPECT_TLS_CERT',
    arg: 'FILE',
    help: 'PEM certificate chain: serve TLS (needs --tls-key)',
    apply: (c, v, s) => (c.tlsCert = nonEmptyPath(v, s)),
  },
  {
    flag: '--tls-key',
    env: 'INTROSPECT_TLS_KEY',
    arg: 'FILE',
    help: 'PEM private key of --tls-cert',
    apply: (c, v, s) => (c.tlsKey = nonEmptyPath(v, s)),
  },
  {
    flag: '--tls-client-ca',
    env: 'INTROSPECT_TLS_CLIENT_CA',
    arg: 'FILE',
    help: 'PEM CA bundle: require and verify client certificates (mutual TLS)',
    apply: (c, v, s) => (c.tlsClientCa = nonEmptyPath(v, s)),
  },
  {
    flag: '--max-heavy-streams',
    env: 'INTROSPECT_MAX_HEAVY_STREAMS',
    arg: 'N',
    help: 'concurrent heavy calls (Evaluate, analysis streams, ConfidenceMatrix, UploadModel) before RESOURCE_EXHAUSTED (default 2 x workers)',
    apply: (c, v, s) => (c.maxHeavyStreams = parseInteger(v, s, 1, 100_000)),
  },
  {
    flag: '--max-receive-bytes',
    env: 'INTROSPECT_MAX_RECEIVE_BYTES',
    arg: 'SIZE',
    help: 'largest gRPC message the server accepts (default 16MiB)',
    apply: (c, v, s) => (c.maxReceiveBytes = parseBytes(v, s)),
  },
];

function nonEmptyPath(value: string, source: string): string {
  if (value.trim() === '') throw new ConfigError(`${source} must not be empty`);
  return path.resolve(value.trim());
}

export function usage(): string {
  const lines = [
    'Usage: introspect-server [options]',
    '',
    'Serves the cnn-introspect gRPC API (ModelService, DatasetService, AnalysisService, grpc.health.v1,',
    'reflection) and Prometheus metrics. Every option can also be set by the environment variable shown.',
    '',
  ];
  for (const o of OPTIONS) {
    const left = `  ${o.flag}${o.switch ? '' : ` ${o.arg}`}`;
    lines.push(`${left.padEnd(34)}${o.help}`);
    lines.push(`${''.padEnd(34)}env ${o.env}`);
  }
  lines.push(`${'  -h, --help'.padEnd(34)}show this help`);
  return lines.join('\n') + '\n';
}

export type ParsedConfig = { help: true } | { help: false; config: ServerConfig };

/** Environment first, then flags (`--flag value` or `--flag=value`). Throws ConfigError. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedConfig {
  const config = defaultConfig();
  for (const o of OPTIONS) {
    const v = env[o.env];
    if (v !== undefined && v !== '') o.apply(config, v, `environment variable ${o.env}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') return { help: true };
    const eq = a.indexOf('=');
    const flag = eq >= 0 ? a.slice(0, eq) : a;
    const o = OPTIONS.find((x) => x.flag === flag);
    if (!o) throw new ConfigError(`unknown option '${a}' (see --help)`);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (o.switch) value = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`${flag} needs a value (${o.arg})`);
      value = next;
      i++;
    }
    o.apply(config, value, flag);
  }
  return { help: false, config };
}

/** Something to show in the startup log line. */
export function describeConfig(c: ServerConfig): Record<string, unknown> {
  return { ...c, cpus: os.availableParallelism() };
}
