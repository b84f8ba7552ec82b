/**
 * A byte-bounded LRU cache for analysis results, keyed by what determines them: the model's sha256,
 * the data set, and the canonical JSON of the request's parameters (key order does not matter).
 * Hit and miss counters are plain numbers; the server maps them to Prometheus metrics.
 */
import { LRUCache } from 'lru-cache';
import { invalidArgument } from '../errors';

/**
 * JSON with object keys sorted at every level, so equal parameters give equal strings. Typed arrays
 * become plain arrays, `undefined` members are dropped (as JSON.stringify does), bigints become strings.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
    return value;
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>, (v) => canonical(v));
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonical(v)));
  if (value instanceof Map) return canonical(Object.fromEntries([...value.entries()].map(([k, v]) => [String(k), v])));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined && typeof v !== 'function') out[key] = canonical(v);
  }
  return out;
}

export interface CacheKeyParts {
  modelSha256: string;
  /** Data set name ('' when the result does not depend on one). */
  dataset: string;
  params: unknown;
}

export function cacheKey(parts: CacheKeyParts): string {
  return `${parts.modelSha256}\u0000${parts.dataset}\u0000${canonicalJson(parts.params)}`;
}

/** Whether a key made by `cacheKey` is of a result on data set `dataset`. */
export function keyOfDataset(key: string, dataset: string): boolean {
  return key.split('\u0000', 3)[1] === dataset;
}

export interface ResultCacheOptions<V> {
  /** Upper bound on the summed sizes of the entries. */
  maxBytes: number;
  /** Size of one entry in bytes (at least 1). */
  sizeOf: (value: V) => number;
}

export class ResultCache<V extends NonNullable<unknown>> {
  private readonly lru: LRUCache<string, V>;
  hits = 0;
  misses = 0;

  constructor(private readonly opts: ResultCacheOptions<V>) {
    if (!(opts.maxBytes >= 1)) throw invalidArgument(`cache size must be at least 1 byte, got ${opts.maxBytes}`);
    this.lru = new LRUCache<string, V>({
      maxSize: opts.maxBytes,
      sizeCalculation: (v) => Math.max(1, Math.ceil(opts.sizeOf(v))),
    });
  }

  get(key: string): V | undefined {
    const v = this.lru.get(key);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  /** Stores the value; one larger than the whole cache is not stored (returns false). */
  set(key: string, value: V): boolean {
    if (Math.ceil(this.opts.sizeOf(value)) > this.opts.maxBytes) return false;
    this.lru.set(key, value);
    return true;
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  /** The cached value, or computes, stores and returns it (counts a hit or a miss). */
  async getOrCompute(key: string, compute: () => Promise<V>): Promise<{ value: V; cached: boolean }> {
    const hit = this.get(key);
    if (hit !== undefined) return { value: hit, cached: true };
    const value = await compute();
    this.set(key, value);
    return { value, cached: false };
  }

  delete(key: string): boolean {
    return this.lru.delete(key);
  }

  /** Deletes every entry whose key passes `test`; returns how many went. */
  deleteWhere(test: (key: string) => boolean): number {
    const keys = [...this.lru.keys()].filter(test);
    for (const k of keys) this.lru.delete(k);
    return keys.length;
  }

  clear(): void {
    this.lru.clear();
  }

  get entries(): number {
    return this.lru.size;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get maxBytes(): number {
    return this.opts.maxBytes;
  }
}

/** Bytes of a value made of typed arrays, arrays, plain objects, strings and numbers (an estimate). */
export function approximateBytes(value: unknown, seen = new Set<object>()): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return 8;
  if (typeof value === 'boolean') return 4;
  if (typeof value === 'string') return 2 * value.length;
  if (typeof value === 'bigint') return 8;
  if (typeof value !== 'object') return 0;
  if (seen.has(value)) return 0;
  seen.add(value);
  if (ArrayBuffer.isView(value)) return value.byteLength;
  if (value instanceof ArrayBuffer) return value.byteLength;
  let total = 0;
  if (value instanceof Map) {
    for (const [k, v] of value) total += approximateBytes(k, seen) + approximateBytes(v, seen);
    return total;
  }
  if (Array.isArray(value)) {
    for (const v of value) total += 8 + approximateBytes(v, seen);
    return total;
  }
  for (const [k, v] of Object.entries(value)) total += 2 * k.length + approximateBytes(v, seen);
  return total;
}
