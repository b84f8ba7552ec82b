/**
 * Chooses the tfjs backend at run time, best first: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node (both
 * register 'tensorflow'; optional packages that need libtensorflow), @tensorflow/tfjs-backend-wasm (binaries
 * ship in the package), @tensorflow/tfjs-backend-cpu. A `backend` option forces one.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export type TfjsBackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface TfjsBackendChoice {
  backend: TfjsBackendName;
  /** 'cuda:0' for tfjs-node-gpu, else 'cpu' (wasm runs on the CPU too). */
  device: string;
  /** The package that provides it. */
  provider: string;
  /** Why better candidates were skipped ('' when the first choice worked). */
  note: string;
}

interface Candidate {
  backend: TfjsBackendName;
  provider: string;
  load: () => Promise<void>;
}

/** `require` that TypeScript does not resolve at build time: these packages are optional. */
function optionalRequire(name: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name);
}

const candidates: Candidate[] = [
  { backend: 'tensorflow', provider: '@tensorflow/tfjs-node-gpu', load: async () => void optionalRequire('@tensorflow/tfjs-node-gpu') },
  { backend: 'tensorflow', provider: '@tensorflow/tfjs-node', load: async () => void optionalRequire('@tensorflow/tfjs-node') },
  {
    backend: 'wasm',
    provider: '@tensorflow/tfjs-backend-wasm',
    load: async () => {
      const wasm = optionalRequire('@tensorflow/tfjs-backend-wasm') as { setWasmPaths: (p: string) => void };
      // In Node the .wasm files are read from disk: point the loader at the package's dist folder.
      const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
      wasm.setWasmPaths(dist);
    },
  },
  { backend: 'cpu', provider: '@tensorflow/tfjs-backend-cpu', load: async () => void optionalRequire('@tensorflow/tfjs-backend-cpu') },
];

let cached: Map<TfjsBackendName, Promise<TfjsBackendChoice>> | undefined;

/**
 * Loads and initialises the best available backend (or the forced one) and makes it the active tfjs backend.
 * The outcome is cached per requested backend; `log` receives the reason for every fallback.
 */
export async function selectBackend(forced: TfjsBackendName | undefined, log: (m: string) => void): Promise<TfjsBackendChoice> {
  cached ??= new Map();
  const cacheKey = forced ?? ('auto' as TfjsBackendName);
  let p = cached.get(cacheKey);
  if (!p) {
    p = trySelect(forced, log);
    cached.set(cacheKey, p);
    p.catch(() => cached?.delete(cacheKey));
  }
  const choice = await p;
  await activate(choice.backend);
  return choice;
}

/** Makes `backend` the active one (tfjs has one active backend per process). */
export async function activate(backend: TfjsBackendName): Promise<void> {
  if (tf.getBackend() !== backend) {
    if (!(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} failed to initialise`);
  }
  await tf.ready();
}

async function trySelect(forced: TfjsBackendName | undefined, log: (m: string) => void): Promise<TfjsBackendChoice> {
  const skipped: string[] = [];
  for (const c of candidates) {
    if (forced && c.backend !== forced) continue;
    try {
      await c.load();
      if (!tf.findBackendFactory(c.backend)) throw new Error(`it did not register backend '${c.backend}'`);
      if (!(await tf.setBackend(c.backend))) throw new Error(`backend '${c.backend}' failed to initialise`);
      await tf.ready();
      // tfjs-node-gpu places ops on the GPU through libtensorflow (which itself falls back to the CPU).
      const device = c.provider.endsWith('-gpu') ? 'cuda:0' : 'cpu';
      const note = skipped.length ? `tfjs: using ${c.provider}; skipped ${skipped.join('; ')}` : '';
      if (note) log(note);
      return { backend: c.backend, device, provider: c.provider, note };
    } catch (e) {
      skipped.push(`${c.provider} (${shortReason(e)})`);
    }
  }
  throw new Error(`no tfjs backend could be loaded${forced ? ` (forced: ${forced})` : ''}: ${skipped.join('; ')}`);
}

function shortReason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  const first = m.split('\n')[0] ?? m;
  return /Cannot find module/.test(first) ? 'not installed' : first.slice(0, 200);
}
