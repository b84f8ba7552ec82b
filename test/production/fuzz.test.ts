/**
 * Malformed requests against a real loopback server: random bytes as raw request messages to every
 * method (identity serialisers), random protobuf-shaped messages (valid wire format, random fields),
 * typed requests with random field values through the generic client, and mutated model files for
 * UploadModel. Seeded, bounded in count; the server must answer every call with a status, never
 * crash, and answer health afterwards. INTERNAL answers (bugs) are counted and must not occur.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { status, type Client } from '@grpc/grpc-js';
import { UploadModelHeader } from '../../api/generated/introspect/v1/models';
import { apiMethods, type MethodInfo } from '../../api/methods';
import { BUNDLED_MODEL, startTestServer, type TestServer } from '../support/server';
import { until } from '../rpc/support';
import { MiB, randomBytes, rawCall, rawClient, rng, type RawOutcome } from './support';

type Tally = Map<string, number>;

/** The client's own refusal to encode a value (never sent; not a server outcome). */
const UNENCODABLE = /^Request message serialization failure/;

function record(t: Tally, o: { code: number }, internals: string[], label: string, details: string): void {
  // Bytes that do not decode as the request type answer INVALID_ARGUMENT (server/decode.ts), so every
  // INTERNAL or UNKNOWN answer from the server is a bug.
  const unencodable = o.code === status.INTERNAL && UNENCODABLE.test(details);
  const name = unencodable ? 'not sent (client could not encode)' : (status[o.code] ?? String(o.code));
  t.set(name, (t.get(name) ?? 0) + 1);
  if ((o.code === status.INTERNAL && !unencodable) || o.code === status.UNKNOWN) internals.push(`${label}: ${details}`);
}

/** Runs `tasks` with at most `width` at a time. */
async function pool<T>(tasks: Array<() => Promise<T>>, width: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

/** A random message in valid protobuf wire format: fields 1..12 of random wire types, nesting up to `depth`. */
function randomWire(next: () => number, depth: number): Buffer {
  const parts: number[] = [];
  const fields = Math.floor(next() * 6);
  for (let f = 0; f < fields; f++) {
    const field = 1 + Math.floor(next() * 12);
    const r = next();
    if (r < 0.4) {
      const values = [0, 1, 2, 3, 7, 255, 0x7fffffff, 0xffffffff, Math.floor(next() * 1e6)];
      parts.push(...varint((field << 3) | 0), ...varint(values[Math.floor(next() * values.length)]!));
    } else if (r < 0.85) {
      const body =
        depth > 0 && next() < 0.5
          ? randomWire(next, depth - 1)
          : next() < 0.5
            ? Buffer.from(['cnn', 'mnist', '', '..', 'builtin:mnist', 'x'.repeat(300), '\u0000'][Math.floor(next() * 7)]!)
            : randomBytes(next, Math.floor(next() * 64));
      parts.push(...varint((field << 3) | 2), ...varint(body.length), ...body);
    } else if (r < 0.93) {
      parts.push(...varint((field << 3) | 5), ...randomBytes(next, 4));
    } else {
      parts.push(...varint((field << 3) | 1), ...randomBytes(next, 8));
    }
  }
  return Buffer.from(parts);
}

const STRINGS = ['', 'cnn', 'mnist', '../../etc/passwd', '/etc/passwd', 'builtin:mnist', 'builtin:nope', 'x'.repeat(4096), 'a\u0000b', 'é🙂', 'mnist_cnn.onnx'];
/** Values every integer and float field type can encode (int32 included). */
const NUMBERS = [0, 1, 2, 3, 9, 10, 255, 65535, 1_000_000, 2 ** 31 - 1];
/** Repeated fields holding numbers (elements may be made up when the seed has none). */
const NUMERIC_LISTS = new Set(['classes', 'channels', 'indices', 'shape', 'layers_']);

/** Random values for the fields of a typed request (keeping each field's JS type), recursively. */
function mutate(value: unknown, key: string, next: () => number, depth = 0): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  if (typeof value === 'string') return key === 'model' && next() < 0.5 ? 'cnn' : key === 'dataset' && next() < 0.5 ? 'mnist' : pick(STRINGS);
  if (typeof value === 'number') return pick(NUMBERS);
  if (typeof value === 'boolean') return next() < 0.5;
  if (value instanceof Uint8Array) return randomBytes(next, Math.floor(next() * 2048));
  if (Array.isArray(value)) {
    const n = Math.floor(next() * 4);
    if (value.length === 0) return NUMERIC_LISTS.has(key) ? Array.from({ length: n }, () => pick(NUMBERS)) : [];
    return Array.from({ length: n }, () => mutate(value[0], key, next, depth + 1));
  }
  if (value && typeof value === 'object' && depth < 4) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = next() < 0.7 ? mutate(v, k, next, depth + 1) : v;
    return out;
  }
  return value;
}

/** Seed requests reaching deep into the handlers (valid names, nested messages), mutated by `mutate`. */
function seeds(m: MethodInfo): unknown[] {
  const sample = { source: { $case: 'sample', value: { dataset: 'mnist', split: 2, index: 3 } } };
  const tensor = { source: { $case: 'tensor', value: { shape: [1, 28, 28], dtype: 1, data: Buffer.alloc(28 * 28 * 4) } } };
  const byMethod: Record<string, unknown[]> = {
    Evaluate: [{ model: 'cnn', dataset: 'mnist', limit: 16 }],
    NeuronImages: [{ model: 'cnn', input: sample, layers: [{ layer: 0, channels: [1, 2] }], classes: [3] }, { model: 'cnn', input: tensor, layers: [{ layer: 1, start: 2, end: 4 }] }],
    ClassAverages: [{ model: 'cnn', dataset: 'mnist', classes: [1], average: { kind: 2, k: 4, split: 2 } }],
    Predict: [{ model: 'cnn', images: { shape: [28, 28, 1], dtype: 2, data: Buffer.alloc(784, 9) }, top: 3 }],
    GetSamples: [{ dataset: 'mnist', indices: [1, 2], limit: 3 }],
    Similarity: [{ model: 'cnn', dataset: 'mnist', layers: [0], classes: [1], average: { kind: 1, split: 2 }, rankImages: 1 }],
    DatasetExamples: [{ model: 'cnn', dataset: 'mnist', layer: 0, channels: [0], k: 2, limit: 8 }],
    SanityCheck: [{ similarity: { model: 'cnn', dataset: 'mnist', layers: [0], classes: [1], average: { split: 2 } }, seed: 1, maxDepth: 1 }],
    ConfidenceMatrix: [{ model: 'cnn', dataset: 'mnist', average: { kind: 2, k: 4, split: 2 } }],
  };
  if (m.method === 'UploadModel') {
    return [UploadModelHeader.fromPartial({ name: 'u', sizeBytes: 100 }), UploadModelHeader.fromPartial({ name: 'v', format: 1, classNames: ['a', 'b'], preprocessing: { mean: [0.5], std: [0.25] } })];
  }
  const base = (byMethod[m.method] ?? [{}]).map((s) => m.request.fromJSON(m.request.toJSON(fromPartialLoose(m, s))));
  return [m.request.fromJSON({}), ...base];
}

/** The seed as a message (codecs have fromPartial; the MethodInfo codec type omits it). */
function fromPartialLoose(m: MethodInfo, seed: unknown): unknown {
  const codec = m.request as unknown as { fromPartial?: (x: unknown) => unknown };
  return codec.fromPartial ? codec.fromPartial(seed) : m.request.fromJSON(seed);
}

describe('production: fuzzing malformed requests', function () {
  this.timeout(150_000);
  let ts: TestServer;
  let raw: Client;
  const internals: string[] = [];
  const totals = { rawBytes: 0, wire: 0, typed: 0, models: 0 };

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { maxHeavyStreams: 8, maxUploadBytes: 4 * MiB } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
    await ts.client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
    raw = rawClient(ts.address);
  });
  after(async () => {
    raw?.close();
    await ts?.close();
    console.log(`      fuzz cases: ${totals.rawBytes} random-byte, ${totals.wire} random-wire, ${totals.typed} typed, ${totals.models} mutated models`);
  });

  /** After a batch: no call stuck, health answers, a real call still works. */
  async function stillServing(): Promise<void> {
    await until(() => ts.server.app.rpc.calls.size === 0 && ts.server.heavyStreams.active === 0, 'fuzzed calls to end', 30_000);
    assert.ok(ts.server.health.isServing());
    await ts.client.getDataset('mnist');
    assert.deepEqual(internals, [], 'INTERNAL/UNKNOWN answers');
  }

  const methods = apiMethods();

  it('random bytes and random wire-format messages to every method', async () => {
    const next = rng(0x1f2e3d);
    const tally: Tally = new Map();
    const tasks: Array<() => Promise<void>> = [];
    for (const m of methods) {
      for (let i = 0; i < 60; i++) {
        const wire = i >= 30;
        const n = m.requestStream ? 1 + Math.floor(next() * 3) : 1;
        const payloads = Array.from({ length: n }, () => (wire ? randomWire(next, 3) : randomBytes(next, Math.floor(next() * (i % 5 === 0 ? 4096 : 96)))));
        tasks.push(async () => {
          const o: RawOutcome = await rawCall(raw, m.path, m, payloads, 3000);
          record(tally, o, internals, `${m.method} ${wire ? 'wire' : 'bytes'} ${payloads.map((p) => p.toString('hex').slice(0, 80)).join('|')}`, o.details);
          if (wire) totals.wire++;
          else totals.rawBytes++;
        });
      }
    }
    await pool(tasks, 8);
    console.log(`      ${tasks.length} raw cases over ${methods.length} methods: ${[...tally].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    await stillServing();
  });

  it('typed requests with random field values through the generic client', async () => {
    const next = rng(0xbeef);
    const tally: Tally = new Map();
    const tasks: Array<() => Promise<void>> = [];
    for (const m of methods) {
      if (m.method === 'UnloadModel' || m.method === 'UnregisterDataset') continue; // would remove the fixtures; covered by bytes
      const base = seeds(m);
      for (let i = 0; i < 50; i++) {
        const req = mutate(base[i % base.length], '', next);
        tasks.push(async () => {
          let outcome = { code: 0, details: '' };
          try {
            for await (const _ of ts.client.call(m, m.requestStream ? [{ part: { $case: 'header', value: req } }] : [req], { timeoutMs: 3000 })) void _;
          } catch (err) {
            const e = err as { code?: number; details?: string; message?: string };
            if (typeof e.code !== 'number') throw err;
            outcome = { code: e.code, details: e.details ?? e.message ?? '' };
          }
          record(tally, outcome, internals, `${m.method} ${JSON.stringify(req).slice(0, 300)}`, outcome.details);
          totals.typed++;
        });
      }
    }
    await pool(tasks, 8);
    console.log(`      ${tasks.length} typed cases: ${[...tally].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    // Names the fuzz may have loaded or registered do not matter; the fixtures must still be there.
    await stillServing();
    assert.ok((await ts.client.listModels()).some((x) => x.name === 'cnn'));
  });

  it('a few hundred mutated model files through UploadModel', async () => {
    const next = rng(0xc0ffee);
    const original = fs.readFileSync(BUNDLED_MODEL);
    const tally: Tally = new Map();
    const tasks: Array<() => Promise<void>> = [];
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(original);
      let mutated: Buffer = bytes;
      const kind = i % 4;
      if (kind === 0) for (let k = 0; k < 1 + Math.floor(next() * 8); k++) bytes[Math.floor(next() * bytes.length)] = Math.floor(next() * 256);
      else if (kind === 1) mutated = bytes.subarray(0, Math.floor(next() * bytes.length));
      else if (kind === 2) {
        const at = Math.floor(next() * 2048); // the graph and its shapes lie near the start
        mutated = Buffer.concat([bytes.subarray(0, at), randomBytes(next, 1 + Math.floor(next() * 16)), bytes.subarray(at + Math.floor(next() * 16))]);
      } else for (let k = 0; k < 4; k++) bytes[Math.floor(next() * 4096)] ^= 1 << Math.floor(next() * 8);
      const name = `fuzz${i}`;
      tasks.push(async () => {
        let outcome = { code: 0, details: '' };
        try {
          await ts.client.uploadModel({ name }, mutated, { chunkBytes: 64 * 1024, timeoutMs: 20_000 });
          // Loaded: it must also be usable or refuse cleanly, then go away.
          try {
            await ts.client.predict({ model: name, images: { shape: [28, 28, 1], dtype: 2, data: Buffer.alloc(784, 3) } }, { timeoutMs: 10_000 });
          } catch (err) {
            const e = err as { code: number; details: string };
            record(tally, e, internals, `predict on mutated model ${i} (kind ${kind})`, e.details);
          }
          await ts.client.unloadModel(name);
        } catch (err) {
          const e = err as { code?: number; details?: string };
          if (typeof e.code !== 'number') throw err;
          outcome = { code: e.code, details: e.details ?? '' };
        }
        record(tally, outcome, internals, `upload of mutated model ${i} (kind ${kind})`, outcome.details);
        totals.models++;
      });
    }
    await pool(tasks, 4);
    console.log(`      300 mutated models: ${[...tally].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    await stillServing();
  });
});
