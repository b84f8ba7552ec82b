/**
 * A real server on a loopback port for tests, with temporary model and data roots holding copies of
 * the files a test needs (copies, not symlinks: the server refuses links that leave its roots).
 *
 *   const ts = await startTestServer({ models: [sharedPath('models/resnet20_cifar10.onnx')] });
 *   await ts.client.listModels();
 *   await ts.close();
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IntrospectClient } from '../../clients/client';
import { defaultConfig, type ServerConfig } from '../../server/config';
import { createLogger, type LogLevel, type Logger } from '../../server/log';
import { startServer, type RunningServer } from '../../server/server';

/** The repository root (tests run from it; this file is compiled to <out>/test/support/). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

/** The bundled default model (models/mnist_cnn.onnx and its sidecar). */
export const BUNDLED_MODEL = path.join(REPO_ROOT, 'models', 'mnist_cnn.onnx');

export interface TestServerOptions {
  /** Files copied into the model root (a model's `.json` sidecar beside it is copied too). */
  models?: string[];
  /** Files or folders copied into the data root. */
  data?: string[];
  config?: Partial<ServerConfig>;
  /** Server log level (default: $INTROSPECT_TEST_LOG or 'silent'). */
  logLevel?: LogLevel;
  /** A logger to use instead (e.g. one writing to memory); `logLevel` then only sets the config's level. */
  log?: Logger;
}

export interface TestServer {
  server: RunningServer;
  address: string;
  client: IntrospectClient;
  modelRoot: string;
  dataRoot: string;
  /** The temporary folder holding both roots (and room for files outside them). */
  tmp: string;
  metricsUrl: string;
  /** Graceful close (grace 0 unless given), then removes the temporary folders. */
  close(graceMs?: number): Promise<void>;
}

async function copyInto(dir: string, src: string): Promise<void> {
  await fs.promises.cp(src, path.join(dir, path.basename(src)), { recursive: true });
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const tmp = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-test-'));
  const modelRoot = path.join(tmp, 'models');
  const dataRoot = path.join(tmp, 'data');
  await fs.promises.mkdir(modelRoot);
  await fs.promises.mkdir(dataRoot);
  for (const m of opts.models ?? []) {
    await copyInto(modelRoot, m);
    const sidecar = m.replace(/\.onnx$/, '.json');
    if (sidecar !== m && fs.existsSync(sidecar)) await copyInto(modelRoot, sidecar);
  }
  for (const d of opts.data ?? []) await copyInto(dataRoot, d);
  const level = opts.logLevel ?? ((process.env.INTROSPECT_TEST_LOG as LogLevel | undefined) ?? 'silent');
  const config: ServerConfig = {
    ...defaultConfig(),
    host: '127.0.0.1',
    port: 0,
    metricsPort: 0,
    modelRoot,
    dataRoot,
    workers: 1,
    intraOpThreads: 1,
    gracePeriodMs: 0,
    logLevel: level,
    ...opts.config,
  };
  const server = await startServer(config, { log: opts.log ?? createLogger({ level }) });
  const address = `127.0.0.1:${server.port}`;
  const client = new IntrospectClient(address);
  let closed = false;
  return {
    server,
    address,
    client,
    modelRoot,
    dataRoot,
    tmp,
    metricsUrl: `http://127.0.0.1:${server.metricsPort}/metrics`,
    async close(graceMs = 0) {
      if (closed) return;
      closed = true;
      client.close();
      await server.close(graceMs);
      await fs.promises.rm(tmp, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` and returns the gRPC error it throws (fails when it does not throw). */
export async function grpcError(fn: () => Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await fn();
  } catch (err) {
    const e = err as { code?: unknown; details?: unknown };
    if (typeof e.code === 'number' && typeof e.details === 'string') return { code: e.code, details: e.details };
    throw err;
  }
  throw new Error('expected the call to fail with a gRPC status, but it succeeded');
}

/** Drains an async iterable into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}
