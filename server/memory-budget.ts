/**
 * The one place that sizes the server's memory budget per request: --memory-budget when given, else a
 * quarter of the container's memory limit (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`),
 * else 1 GiB. The engines bound the tensors they hold in flight by the same figure.
 */
import * as fs from 'node:fs';
import type { ServerConfig } from './config';

export const DEFAULT_REQUEST_MEMORY = 1024 ** 3;
/** Share of the container limit one request may use (the rest: V8 heap, model cache, other requests). */
export const CGROUP_SHARE = 0.25;

const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

/** The container's memory limit in bytes, or undefined when there is none ("max", or v1's huge sentinel). */
export function cgroupMemoryLimit(read: (file: string) => string | undefined = readOrUndefined): number | undefined {
  for (const file of CGROUP_FILES) {
    const text = read(file)?.trim();
    if (text === undefined || text === '') continue;
    if (text === 'max') return undefined;
    const n = Number(text);
    if (Number.isSafeInteger(n) && n > 0 && n < 2 ** 60) return n;
    return undefined;
  }
  return undefined;
}

export interface MemoryBudget {
  /** Bytes one request may use. */
  requestBytes: number;
  /** Where the figure came from, as shown in errors and the start-up log. */
  source: string;
  /** The container limit, when there is one. */
  containerBytes?: number;
}

export function resolveMemoryBudget(config: Pick<ServerConfig, 'memoryBudget'>, read?: (file: string) => string | undefined): MemoryBudget {
  const container = cgroupMemoryLimit(read);
  if (config.memoryBudget !== undefined) return { requestBytes: config.memoryBudget, source: '--memory-budget', containerBytes: container };
  if (container !== undefined) {
    return { requestBytes: Math.floor(container * CGROUP_SHARE), source: `a quarter of the container's memory limit of ${container} bytes; set --memory-budget`, containerBytes: container };
  }
  return { requestBytes: DEFAULT_REQUEST_MEMORY, source: 'the default; set --memory-budget', containerBytes: undefined };
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
