/**
 * The engine registry of the process, with the built-in engines registered (the one place that names
 * them), and the engines of one server process built from one options object.
 */
import type { Engine, EngineKind, EngineStatus } from './engine';
import { ORT_DEVICES, type OrtDevice } from './onnxruntime/devices';
import { OnnxRuntimeEngine, type OnnxRuntimeOptions } from './onnxruntime/engine';
import { EngineRegistry, type EngineSet, type EngineSetup, type StartingEngine } from './registry';
import { TfjsEngine, type TfjsOptions } from './tfjs/engine';

/** The devices the tfjs engine can be asked for (its backend is otherwise its own choice: tfjs/backend.ts). */
const TFJS_DEVICES = ['cpu', 'webgpu'] as const;

/** Every engine this process knows. onnxruntime first (worker threads, GPU devices), then tfjs. */
export const engineRegistry = new EngineRegistry();

/** The built-in engines' factories (a test registers them in a registry of its own). */
export const onnxruntimeFactory = (s: EngineSetup): OnnxRuntimeEngine => new OnnxRuntimeEngine({ ...(s as OnnxRuntimeOptions), device: s.device as OrtDevice | undefined });
export const tfjsFactory = (s: EngineSetup): TfjsEngine => new TfjsEngine(s as TfjsOptions);

engineRegistry.register('onnxruntime', onnxruntimeFactory, 100, ORT_DEVICES);
engineRegistry.register('tfjs', tfjsFactory, 50, TFJS_DEVICES);

export interface EnginesOptions extends Omit<EngineSetup, 'options'> {
  onnxruntime?: OnnxRuntimeOptions;
  tfjs?: TfjsOptions;
  /** Per-engine options of other registered engines, by name. */
  options?: Record<string, object | undefined>;
}

export interface Engines {
  /** The engines by name (lazily made and started). */
  readonly set: EngineSet;
  /** The built-in engines, made on first access (for tests and tools that want one by its type). */
  readonly onnxruntime: OnnxRuntimeEngine;
  readonly tfjs: TfjsEngine;
  /** The engine of a name: INVALID_ARGUMENT naming the known engines when there is none of that name. */
  engineFor(kind: EngineKind): Engine;
  /** Statuses of the engines made, highest priority first. */
  statuses(): EngineStatus[];
  /** The most worker threads of any engine made (1 where none has workers). */
  readonly workers: number;
  /** Starts every registered engine (workers up, backends loaded); rejects naming the first that fails. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** Engines of `registry` (default: the process's) from one options object. */
export function createEngines(opts: EnginesOptions = {}, registry: EngineRegistry = engineRegistry): Engines {
  const { onnxruntime, tfjs, options, ...common } = opts;
  const set = registry.engines({ ...common, options: { ...options, onnxruntime, tfjs } });
  return {
    set,
    get onnxruntime() {
      return set.instance('onnxruntime') as OnnxRuntimeEngine;
    },
    get tfjs() {
      return set.instance('tfjs') as TfjsEngine;
    },
    engineFor: (kind) => set.get(kind),
    statuses: () => set.made().map((e) => e.status()),
    get workers() {
      return Math.max(1, ...set.made().map((e: StartingEngine) => e.workers ?? 1));
    },
    ready: async () => {
      await set.startAll();
    },
    close: () => set.close(),
  };
}

export { EngineRegistry, OnnxRuntimeEngine, TfjsEngine };
export type { EngineSet, EngineSetup, OnnxRuntimeOptions, StartingEngine, TfjsOptions };
