/** Messages between the onnxruntime worker pool (main thread) and its workers. */
import type { ErrorKind } from '../../errors';
import type { OrtDevice } from './devices';

export type { OrtDevice };

/** What every worker is started with (workerData). */
export interface WorkerConfig {
  intraOpThreads: number;
  device: OrtDevice;
}

export interface TensorMessage {
  data: Float32Array;
  dims: number[];
}

export type ToWorker =
  | {
      type: 'run';
      id: number;
      key: string;
      /** The ONNX graph, sent the first time this worker sees `key`. */
      model?: Uint8Array;
      /** Sessions to drop first (the pool decides what each worker keeps). */
      evict: string[];
      feeds: Record<string, TensorMessage>;
      fetches: string[];
    }
  | { type: 'release'; keys: string[] }
  /** Finish the queue, release every session and let the thread end (see WorkerPool.close). */
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; provider: OrtDevice; note: string }
  | { type: 'result'; id: number; outputs: Record<string, TensorMessage> }
  | { type: 'error'; id: number; kind: ErrorKind; message: string };
