/** What global_avg_pool and global_max_pool share: shape rule and ONNX / Keras readers. */
import { invalidArgument } from '../../errors';
import type { Shape } from '../ir';
import { knownValues } from '../onnx-const-eval';
import type { KerasReadContext, KerasValue, OnnxReadContext, ShapeContext } from './op';

export type GlobalPool = 'global_avg_pool' | 'global_max_pool';

export function globalPoolShape(_op: unknown, [x]: Shape[], cx: ShapeContext): Shape {
  if (x!.length !== 3) throw invalidArgument(`${cx.what}: expects a [C,H,W] input, got [${x}]`);
  return [x![0]!, 1, 1];
}

function emitGlobal(cx: OnnxReadContext, op: GlobalPool, keepDims: boolean): void {
  const x = cx.dataIn(0);
  const shape = cx.shapeOf(x);
  if (shape.length !== 3) return cx.fail(`input must be [C,H,W], got [${shape}]`);
  const pooled = cx.emit({ op }, [x], keepDims ? '' : '/pool');
  cx.bindOut(keepDims ? pooled : cx.emit({ op: 'flatten' }, [pooled]));
}

/** ONNX GlobalAveragePool / GlobalMaxPool. */
export const readOnnxGlobal = (op: GlobalPool) => (cx: OnnxReadContext): void => emitGlobal(cx, op, true);

/** ONNX ReduceMean / ReduceMax over the spatial axes (2, 3) of an NCHW tensor. */
export const readOnnxReduce = (op: GlobalPool) => (cx: OnnxReadContext): void => {
  const x = cx.dataIn(0);
  const r = cx.shapeOf(x).length + 1;
  let axes: number[] | undefined;
  if (cx.opset >= 18) {
    const a = cx.constIn(1, 'axes');
    axes = a ? knownValues(a, 'axes') : undefined;
  } else axes = cx.attrs.ints('axes');
  const norm = (axes ?? []).map((a) => (a < 0 ? a + r : a)).sort();
  if (r !== 4 || norm.length !== 2 || norm[0] !== 2 || norm[1] !== 3) {
    cx.fail(`only a reduction over the spatial axes (2, 3) of an NCHW tensor is supported, got axes [${axes ?? 'all'}]`);
  }
  emitGlobal(cx, op, cx.attrs.int('keepdims', 1) === 1);
};

/** Keras GlobalAveragePooling2D / GlobalMaxPooling2D (keepdims or flattened). */
export const readKerasGlobal = (op: GlobalPool) => (cx: KerasReadContext): KerasValue => {
  const x = cx.one();
  const [c] = cx.requireMap(x);
  const pooled = cx.addNode(cx.name, { op }, [x.name], [c, 1, 1]);
  if (cx.config.keepdims === true) return { name: pooled, shape: [c, 1, 1], perm: null };
  const name = cx.addNode(`${cx.name}/flatten`, { op: 'flatten' }, [pooled], [c]);
  return { name, shape: [c], perm: null };
};
