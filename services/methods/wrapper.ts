/** What a wrapper over an attribution method is: its parameters' checks and defaults, its cost, its maths. */

/** Attribution images [B, C, H, W] of a fixed target (B rows) for one input [C, H, W]. */
export type Attributor = (input: Float32Array) => Promise<Float32Array>;

export interface WrapperContext {
  /** Values of one input (C·H·W). */
  size: number;
  /** The request field of a parameter, for error messages (e.g. `attribution.wrappers[0].smoothgrad.samples`). */
  field: (param: string) => string;
}

export interface WrapperDefinition<W extends { kind: string }> {
  readonly kind: W['kind'];
  /** Checks a wrapper's parameters (INVALID_ARGUMENT naming the field) and fills in the defaults. */
  resolve(spec: W, ctx: WrapperContext): W;
  /** Calls of the wrapped method per call of the wrapper. */
  passes(w: W): number;
  /** Bytes per output row the wrapper holds while it runs (accumulators and the wrapped method's result). */
  rowBytes(w: W, size: number): number;
  /** The wrapped method. */
  wrap(inner: Attributor, w: W, signal?: AbortSignal): Attributor;
  /** What determines the results, JSON-able (for cache keys). */
  key(w: W): Record<string, unknown>;
}

/** The largest steps / samples count of one wrapper. */
export const MAX_WRAPPER_COUNT = 4096;
