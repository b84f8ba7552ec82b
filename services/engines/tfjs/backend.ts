/**
 * Chooses the tfjs backend at run time, best first: @tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node (both
 * register 'tensorflow'; optional packages that need libtensorflow), @tensorflow/tfjs-backend-wasm (binaries
 * ship in the package), @tensorflow/tfjs-backend-cpu. A `backend` option forces one.
 *
 * 'webgpu' (@tensorflow/tfjs-backend-webgpu on the `webgpu` package's Dawn bindings for Node, Vulkan on
 * Linux: NVIDIA's driver on GPU nodes, Mesa's lavapipe on a CPU-only machine) is never chosen on its own:
 * only when forced, or when the device `webgpu` is requested, in which case an unavailable adapter falls
 * back to the best of the others with the reason in the note (the server then stays NOT_SERVING unless
 * --allow-cpu-fallback; server/device-readiness.ts).
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

export const TFJS_BACKENDS = ['tensorflow', 'wasm', 'cpu', 'webgpu'] as const;

export type TfjsBackendName = (typeof TFJS_BACKENDS)[number];

export interface TfjsBackendChoice {
  backend: TfjsBackendName;
  /** 'cuda:0' for tfjs-node-gpu, 'webgpu:0' for WebGPU, else 'cpu' (wasm runs on the CPU too). */
  device: string;
  /** The package that provides it. */
  provider: string;
  /** Why better candidates were skipped ('' when the first choice worked). */
  note: string;
}

interface Candidate {
  backend: TfjsBackendName;
  provider: string;
  /** Loads the package; resolves with what to say about the device ('' where nothing). */
  load: () => Promise<string | void>;
  /** Only when asked for (forced, or its device requested), never in the automatic order. */
  onRequest?: boolean;
}

/** `require` that TypeScript does not resolve at build time: these packages are optional. */
function optionalRequire(name: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name);
}

/** `import()` that TypeScript's CommonJS output does not turn into `require` (the `webgpu` package is ESM). */
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

interface DawnModule {
  create: (flags: string[]) => { requestAdapter: () => Promise<{ info?: { vendor?: string; architecture?: string; description?: string } } | null> };
  globals: Record<string, unknown>;
}

/**
 * Installs the `webgpu` package's `navigator.gpu` (Dawn) and WebGPU globals for tfjs-backend-webgpu, then
 * loads that backend; resolves with the adapter's description. Throws where no adapter exists.
 */
async function loadWebgpu(): Promise<string> {
  const dawn = (await importEsm('webgpu')) as DawnModule;
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator?.gpu) {
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (g.navigator) g.navigator.gpu = gpu;
    else g.navigator = { gpu };
  }
  const adapter = await (g.navigator!.gpu as ReturnType<DawnModule['create']>).requestAdapter();
  if (!adapter) throw new Error('no WebGPU adapter (no Vulkan device: install a GPU driver, or Mesa\'s mesa-vulkan-drivers for lavapipe)');
  optionalRequire('@tensorflow/tfjs-backend-webgpu');
  const i = adapter.info ?? {};
  return [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ');
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
  { backend: 'webgpu', provider: '@tensorflow/tfjs-backend-webgpu', load: loadWebgpu, onRequest: true },
];

/** What the engine asks for: a forced backend, or a device (only 'webgpu' changes the choice). */
export interface TfjsBackendRequest {
  backend?: TfjsBackendName;
  device?: string;
}

let cached: Map<string, Promise<TfjsBackendChoice>> | undefined;

/**
 * Loads and initialises the best available backend (or the forced one, or the requested device's) and makes
 * it the active tfjs backend. The outcome is cached per request; `log` receives the reason for every fallback.
 */
export async function selectBackend(request: TfjsBackendRequest, log: (m: string) => void): Promise<TfjsBackendChoice> {
  cached ??= new Map();
  const forced = request.backend;
  const cacheKey = request.backend ?? (request.device === 'webgpu' ? 'device:webgpu' : 'auto');
  let p = cached.get(cacheKey);
  if (!p) {
    p = trySelect(forced, request.device === 'webgpu' && !forced, log);
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

/** The candidates in the order tried: the forced one; else WebGPU first where asked for, then the automatic order. */
function order(forced: TfjsBackendName | undefined, webgpuFirst: boolean): Candidate[] {
  if (forced) return candidates.filter((c) => c.backend === forced);
  const auto = candidates.filter((c) => !c.onRequest);
  return webgpuFirst ? [...candidates.filter((c) => c.backend === 'webgpu'), ...auto] : auto;
}

function deviceOf(c: Candidate): string {
  if (c.backend === 'webgpu') return 'webgpu:0';
  // tfjs-node-gpu places ops on the GPU through libtensorflow (which itself falls back to the CPU).
  return c.provider.endsWith('-gpu') ? 'cuda:0' : 'cpu';
}

async function trySelect(forced: TfjsBackendName | undefined, webgpuFirst: boolean, log: (m: string) => void): Promise<TfjsBackendChoice> {
  const skipped: string[] = [];
  for (const c of order(forced, webgpuFirst)) {
    try {
      const about = await c.load();
      if (!tf.findBackendFactory(c.backend)) throw new Error(`it did not register backend '${c.backend}'`);
      if (!(await tf.setBackend(c.backend))) throw new Error(`backend '${c.backend}' failed to initialise`);
      await tf.ready();
      const note = skipped.length ? `tfjs: using ${c.provider}; skipped ${skipped.join('; ')}` : '';
      if (note) log(note);
      if (about) log(`tfjs: ${c.provider} on adapter ${about}`);
      return { backend: c.backend, device: deviceOf(c), provider: c.provider, note };
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
