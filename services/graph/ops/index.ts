/**
 * The op registry: the one place where op modules are registered. Adding an op = one module in this folder
 * (an `OpDef`, ./op.ts) + its `IrOp` variant in ../ir.ts + one line here; the type of `OPS` makes a missing
 * module a compile error, and the importers, shape inference, both engines' forwards, the attribution
 * builder and the pruning code find everything else through the lookups below.
 */
import { unimplemented } from '../../errors';
import type { IrOp, OpName } from '../ir';
import type { KerasActivation, KerasReader, OnnxReader, OpDef } from './op';
import { add } from './add';
import { affine } from './affine';
import { avgPool } from './avg-pool';
import { clip } from './clip';
import { concat } from './concat';
import { constant } from './constant';
import { conv } from './conv';
import { dense } from './dense';
import { flatten } from './flatten';
import { globalAvgPool } from './global-avg-pool';
import { globalMaxPool } from './global-max-pool';
import { hardSigmoid } from './hard-sigmoid';
import { hardSwish } from './hard-swish';
import { identity } from './identity';
import { leakyRelu } from './leaky-relu';
import { maxPool } from './max-pool';
import { mul } from './mul';
import { pad } from './pad';
import { relu } from './relu';
import { reshape } from './reshape';
import { sigmoid } from './sigmoid';
import { slice } from './slice';
import { tanh } from './tanh';

const OPS: { readonly [K in OpName]: OpDef<K> } = {
  conv,
  max_pool: maxPool,
  avg_pool: avgPool,
  global_avg_pool: globalAvgPool,
  global_max_pool: globalMaxPool,
  relu,
  leaky_relu: leakyRelu,
  clip,
  sigmoid,
  tanh,
  hard_sigmoid: hardSigmoid,
  hard_swish: hardSwish,
  affine,
  dense,
  flatten,
  reshape,
  add,
  mul,
  concat,
  pad,
  slice,
  constant,
  identity,
};

/** Every registered definition. */
export const opDefs = (): OpDef[] => Object.values(OPS) as OpDef[];

/** Facet-keyed tables, each name claimed by exactly one module (checked here, at load). */
function table<T>(facet: (d: OpDef) => Readonly<Record<string, T>> | undefined, what: string): Map<string, T> {
  const m = new Map<string, T>();
  const owner = new Map<string, string>();
  for (const d of opDefs()) {
    for (const [k, v] of Object.entries(facet(d) ?? {})) {
      if (m.has(k)) throw new Error(`op registry: ${what} '${k}' is claimed by both ${owner.get(k)} and ${d.op}`);
      m.set(k, v);
      owner.set(k, d.op);
    }
  }
  return m;
}

const ONNX = table((d) => d.onnx, 'ONNX op type');
const KERAS_LAYERS = table((d) => d.kerasLayers, 'Keras layer class');
const KERAS_ACTIVATIONS = table((d) => d.kerasActivations, 'Keras activation');
const KERAS_VARIABLES = table((d) => d.kerasVariables, 'Keras variable order');

/**
 * The definition of op `name`; unimplemented naming the op and `where` (a node) when none is registered
 * (an IR built by hand or by a newer importer), e.g. "node conv1: op foo is not supported by the tfjs engine".
 */
export function opDef(name: string, where: string, by = 'this service'): OpDef {
  const d = (OPS as Record<string, OpDef | undefined>)[name];
  if (!d) throw unimplemented(`${where}: op ${name} is not supported by ${by}`);
  return d;
}

/** The reader of ONNX op type `opType`, if a module reads it. */
export const onnxReader = (opType: string): OnnxReader | undefined => ONNX.get(opType);
/** The reader of Keras layer class `className`, if a module reads it. */
export const kerasLayerReader = (className: string): KerasReader | undefined => KERAS_LAYERS.get(className);
/** The Keras 3 variable order of layer class `className` with config `config` ([] when it has no variables). */
export const kerasVariableOrder = (className: string, config: Record<string, unknown>): string[] => KERAS_VARIABLES.get(className)?.(config) ?? [];
/** The IR op of Keras activation `name`, if a module reads it. */
export const kerasActivation = (name: string): KerasActivation | undefined => KERAS_ACTIVATIONS.get(name);

/** ONNX op types / Keras layer classes / Keras activations the registered modules read. */
export const onnxOpTypes = (): string[] => [...ONNX.keys()];
export const kerasLayerClasses = (): string[] => [...KERAS_LAYERS.keys()];
export const kerasActivationNames = (): string[] => [...KERAS_ACTIVATIONS.keys()];

const def = (op: IrOp): OpDef | undefined => (OPS as Record<string, OpDef | undefined>)[op.op];

/** IR weights an op refers to. */
export const weightRefs = (op: IrOp): string[] => def(op)?.weights?.(op as never) ?? [];
/** An elementwise activation (what layer listings call a conv layer's activation). */
export const isActivation = (op: IrOp): boolean => def(op)?.traits?.activation === true;
/** Maps every value ≤ 0 to exactly 0. */
export const zeroBelowZero = (op: IrOp): boolean => def(op)?.traits?.zeroBelowZero?.(op) === true;
/** Acts per channel and keeps an all-zero channel all zero. */
export const zeroPreservingOp = (op: IrOp): boolean => def(op)?.traits?.zeroPreserving?.(op) === true;
