/** The engines of one server process, built from one options object. */
import type { Engine, EngineKind } from './engine';
import { OnnxRuntimeEngine, type OnnxRuntimeOptions } from './onnxruntime/engine';
import { TfjsEngine, type TfjsOptions } from './tfjs/engine';
import { invalidArgument } from '../errors';

export interface EnginesOptions {
  onnxruntime?: OnnxRuntimeOptions;
  tfjs?: TfjsOptions;
  log?: (message: string) => void;
}

export interface Engines {
  onnxruntime: OnnxRuntimeEngine;
  tfjs: TfjsEngine;
  /** The engine of a kind. */
  engineFor(kind: EngineKind): Engine;
  /** Waits until both have started (workers up, tfjs backend loaded). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

export function createEngines(opts: EnginesOptions = {}): Engines {
  const onnxruntime = new OnnxRuntimeEngine({ ...opts.onnxruntime, log: opts.onnxruntime?.log ?? opts.log });
  const tfjs = new TfjsEngine({ ...opts.tfjs, log: opts.tfjs?.log ?? opts.log });
  const engines: Engines = {
    onnxruntime,
    tfjs,
    engineFor: (kind) => engineFor(engines, kind),
    ready: async () => {
      await Promise.all([onnxruntime.ready(), tfjs.ready()]);
    },
    close: async () => {
      await Promise.all([onnxruntime.close(), tfjs.close()]);
    },
  };
  return engines;
}

export function engineFor(engines: Pick<Engines, 'onnxruntime' | 'tfjs'>, kind: EngineKind): Engine {
  if (kind === 'onnxruntime') return engines.onnxruntime;
  if (kind === 'tfjs') return engines.tfjs;
  throw invalidArgument(`unknown engine ${String(kind)} (onnxruntime | tfjs)`);
}

export { OnnxRuntimeEngine, TfjsEngine };
export type { OnnxRuntimeOptions, TfjsOptions };
