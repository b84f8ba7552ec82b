/**
 * One onnxruntime worker thread. `InferenceSession.run` is a synchronous native call, so sessions live here,
 * off the main event loop. The worker keeps the sessions the pool tells it to (by key) and runs one request at
 * a time; tensors come and go as transferred ArrayBuffers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ErrorKind } from '../../errors';
import { identityModelBytes } from './probe-model';
import { isGpu, providerName } from './devices';
import type { FromWorker, OrtDevice, TensorMessage, ToWorker, WorkerConfig } from './protocol';

const config = workerData as WorkerConfig;
const port = parentPort!;
const sessions = new Map<string, ort.InferenceSession>();
let provider: OrtDevice = 'cpu';

function sessionOptions(): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: config.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  };
}

/** Tries the configured GPU execution provider on a tiny model; falls back to CPU with the reason. */
async function chooseProvider(): Promise<{ provider: OrtDevice; note: string }> {
  const device = config.device;
  if (!isGpu(device)) return { provider: 'cpu', note: '' };
  try {
    // Severity 4 (fatal only): the reason is reported through the note, not onnxruntime's own log.
    const s = await ort.InferenceSession.create(identityModelBytes(), { executionProviders: [device], logSeverityLevel: 4 });
    const x = new ort.Tensor('float32', Float32Array.of(1), [1]);
    await s.run({ x });
    await s.release();
    return { provider: device, note: '' };
  } catch (e) {
    const reason = firstLine((e as Error).message);
    return { provider: 'cpu', note: `${providerName(device)} execution provider unavailable, using CPU: ${reason}` };
  }
}

function firstLine(s: string): string {
  // Strip ANSI colour codes from onnxruntime's log text and keep it short.
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/\u001b\[[0-9;]*m/g, '').trim();
  return clean.length > 400 ? `${clean.slice(0, 400)}…` : clean;
}

async function run(msg: Extract<ToWorker, { type: 'run' }>): Promise<FromWorker> {
  for (const k of msg.evict) await drop(k);
  let session = sessions.get(msg.key);
  if (!session) {
    if (!msg.model) return { type: 'error', id: msg.id, kind: 'internal', message: `worker has no session for ${msg.key}` };
    try {
      session = await ort.InferenceSession.create(msg.model, sessionOptions());
    } catch (e) {
      return { type: 'error', id: msg.id, kind: 'internal', message: `onnxruntime could not load graph ${msg.key}: ${firstLine((e as Error).message)}` };
    }
    sessions.set(msg.key, session);
  }
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor('float32', t.data, t.dims);
  let results: ort.InferenceSession.OnnxValueMapType;
  try {
    results = await session.run(feeds, msg.fetches);
  } catch (e) {
    const m = firstLine((e as Error).message);
    const kind: ErrorKind = /bad_alloc|memory|allocat/i.test(m) ? 'resource-exhausted' : 'internal';
    return { type: 'error', id: msg.id, kind, message: `onnxruntime run of ${msg.key} failed: ${m}` };
  }
  const outputs: Record<string, TensorMessage> = {};
  for (const name of msg.fetches) {
    const t = results[name] as ort.Tensor;
    outputs[name] = { data: ownFloat32(t.data), dims: t.dims.slice() };
  }
  return { type: 'result', id: msg.id, outputs };
}

/** A Float32Array that owns its whole buffer, so that the buffer can be transferred. */
function ownFloat32(data: ort.Tensor['data']): Float32Array {
  if (data instanceof Float32Array && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) return data;
  if (data instanceof Float32Array) return data.slice();
  return Float32Array.from(data as ArrayLike<number>);
}

async function drop(key: string): Promise<void> {
  const s = sessions.get(key);
  if (!s) return;
  sessions.delete(key);
  await s.release();
}

async function main(): Promise<void> {
  const chosen = await chooseProvider();
  provider = chosen.provider;
  // Messages are handled strictly one after another.
  let queue = Promise.resolve();
  port.on('message', (msg: ToWorker) => {
    queue = queue.then(async () => {
      if (msg.type === 'release') {
        for (const k of msg.keys) await drop(k);
        return;
      }
      if (msg.type === 'close') {
        // Ending the thread with no native call in flight and no session alive: terminating a worker
        // while onnxruntime is inside a call can abort the whole process (Napi::Error at teardown).
        for (const k of [...sessions.keys()]) await drop(k);
        port.close();
        return;
      }
      const reply = await run(msg);
      const transfer = reply.type === 'result' ? Object.values(reply.outputs).map((t) => t.data.buffer as ArrayBuffer) : [];
      port.postMessage(reply, transfer);
    });
  });
  const ready: FromWorker = { type: 'ready', provider: chosen.provider, note: chosen.note };
  port.postMessage(ready);
}

void main();
