/**
 * Device passes: optional forms of the attribution (and forward) graphs that compute the same values faster
 * on some engine and device. Each pass is one module here that owns its form and where it applies; the
 * graph builders (../backward.ts, ../ir-to-onnx.ts) use a pass only when it is in the set they are given. With
 * no passes the graph is the plain one: ConvTranspose conv backward, ScatterElements max-pool backward, the seed
 * as a dense [B, C, H, W] map. Every pass has an equivalence test (test/graph/passes.test.ts: on vs off, both
 * engines).
 */
import { invalidArgument } from '../../errors';
import { convAsDensePass } from './conv-as-dense';
import { convTilesPass } from './conv-tiles';
import { flippedConvPass } from './flipped-conv';
import { packedConvPass } from './packed-conv';
import { poolConvFusedPass } from './pool-conv-fused';
import { poolIndicesPass } from './pool-indices';
import { poolResizePass } from './pool-resize';
import { seedThroughConvPass } from './seed-through-conv';

/** The registry: every pass, by name. */
export const PASSES = [
  seedThroughConvPass,
  flippedConvPass,
  packedConvPass,
  convAsDensePass,
  poolResizePass,
  poolIndicesPass,
  poolConvFusedPass,
  convTilesPass,
] as const;

export type PassName = (typeof PASSES)[number]['name'];
export type PassSet = ReadonlySet<PassName>;

export const PASS_NAMES: readonly PassName[] = PASSES.map((p) => p.name);

/** Every pass (the choices onnxruntime on CPU was tuned with). */
export const ALL_PASSES: PassSet = new Set(PASS_NAMES);
export const NO_PASSES: PassSet = new Set();

/** A validated pass set from names (unknown names are invalid-argument, listing the known ones). */
export function passSet(names: Iterable<string>): PassSet {
  const out = new Set<PassName>();
  for (const n of names) {
    if (!(PASS_NAMES as readonly string[]).includes(n)) {
      throw invalidArgument(`unknown graph pass '${n}' (known: ${PASS_NAMES.join(', ')})`);
    }
    out.add(n as PassName);
  }
  return out;
}

/** A stable text form of a set (cache keys). */
export function passKey(s: PassSet): string {
  return PASS_NAMES.filter((n) => s.has(n)).join('+') || 'plain';
}

/**
 * The passes an engine uses by default on a device:
 * - onnxruntime on CPU: all of them (each was measured faster there: bench/graph-gbp.ts, one thread);
 * - tfjs on CPU (wasm, cpu, tfjs-node): TFJS_CPU_PASSES (measured on tfjs-wasm, VGG11 64 channels, below);
 * - any GPU: none (the forms trade arithmetic for fewer passes over memory on a small CPU; and onnxruntime's
 *   WebGPU MaxPool has no Indices output, which pool-indices needs).
 */
export function defaultPasses(engine: 'onnxruntime' | 'tfjs', device: string): PassSet {
  if (device !== 'cpu') return NO_PASSES;
  return engine === 'onnxruntime' ? ALL_PASSES : TFJS_CPU_PASSES;
}

/**
 * tfjs-wasm, VGG11 conv layer 4, 64 channels, guided, CPU ms per call (median of 3, loaded 2-core machine):
 * plain 986; seed-through-conv + flipped-conv 961; seed-through-conv 966; flipped-conv 1033; all passes 1410;
 * all but pool-conv-fused 1189 (its stride-2 ConvTranspose is a zero-interleaved conv in the interpreter);
 * pool-resize 1192 (Resize + Mul cost more than the scatter there). pool-indices keeps the routing those
 * figures were measured with (the interpreter computes MaxPool's indices from the window taps itself). The interpreter runs a stride-1
 * ConvTranspose as the flipped conv anyway, so flipped-conv only spares the weight flip per program.
 */
export const TFJS_CPU_PASSES: PassSet = new Set<PassName>(['seed-through-conv', 'flipped-conv', 'pool-indices']);
