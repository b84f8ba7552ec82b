/** Fully connected layer y = W x + b, weight [out, in]. */
import * as tf from '@tensorflow/tfjs-core';
import { invalidArgument, unimplemented } from '../../errors';
import type { OnnxReadContext } from './op';
import { defineOp } from './op';

/** A dense node on IR vector `x` (ONNX Gemm / MatMul with constant B). */
function emitDense(cx: OnnxReadContext, x: string, weight: Float32Array, out: number, inF: number, bias: Float32Array | undefined): void {
  const shape = cx.shapeOf(x);
  if (shape.length !== 1 || shape[0] !== inF) return cx.fail(`input per sample is [${shape}], expected [${inF}] (flatten first)`);
  const w = cx.newWeight(`${cx.name}.weight`, [out, inF], weight);
  const b = bias ? cx.newWeight(`${cx.name}.bias`, [out], bias) : undefined;
  cx.bindOut(cx.emit({ op: 'dense', weight: w, bias: b }, [x]));
}

export const dense = defineOp({
  op: 'dense',
  summary: 'W x + b, weight [out, in]',
  shape: (op, [x], cx) => {
    const w = cx.weight(op.weight);
    if (x!.length !== 1 || x![0] !== w.shape[1]) throw invalidArgument(`${cx.what}: input [${x}] does not match weight [${w.shape}]`);
    return [w.shape[0]!];
  },
  weights: (op) => (op.bias ? [op.weight, op.bias] : [op.weight]),
  emitOnnx: (op, cx, _n, [x], o) => {
    const ins = [x!, cx.init(op.weight)];
    if (op.bias) ins.push(cx.init(op.bias));
    return cx.b.node('Gemm', ins, { transB: { i: 1 } }, o);
  },
  tfjs: (op, [x], { pm, node }) => {
    const y = tf.matMul(x!, pm.denseWeight(node, op.weight));
    const b = pm.bias(node, op.bias);
    return b ? tf.add(y, b) : y;
  },
  backward: (op, cx) => cx.give(0, cx.b.node('MatMul', [cx.gy, cx.init(op.weight)])),
  onnx: {
    Gemm: (cx) => {
      const x = cx.dataIn(0);
      if (cx.attrs.int('transA', 0) !== 0) return cx.fail('transA=1 on the image data');
      const bT = cx.constIn(1, 'B');
      if (!bT || bT.dims.length !== 2) return cx.fail('B must be a 2-D constant');
      const transB = cx.attrs.int('transB', 0) === 1;
      const alpha = cx.attrs.float('alpha', 1);
      const beta = cx.attrs.float('beta', 1);
      const [out, inF] = transB ? bT.dims : [bT.dims[1]!, bT.dims[0]!];
      const w = new Float32Array(out! * inF!);
      for (let o = 0; o < out!; o++)
        for (let i = 0; i < inF!; i++) w[o * inF! + i] = alpha * (transB ? bT.data[o * inF! + i]! : bT.data[i * out! + o]!);
      const c = cx.constIn(2, 'C');
      let bias: Float32Array | undefined;
      if (c) {
        const n = c.dims.reduce((a, b) => a * b, 1);
        if (n !== 1 && n !== out) return cx.fail(`C [${c.dims}] does not broadcast to [${out}]`);
        bias = Float32Array.from({ length: out! }, (_, o) => beta * c.data[c.data.length === 1 ? 0 : o]!);
      }
      emitDense(cx, x, w, out!, inF!, bias);
    },
    MatMul: (cx) => {
      const x = cx.dataIn(0);
      const b = cx.constIn(1, 'the second operand');
      if (!b || b.dims.length !== 2) return cx.fail('the second operand must be a 2-D constant');
      const [inF, out] = b.dims as [number, number];
      const w = new Float32Array(out * inF);
      for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) w[o * inF + i] = b.data[i * out + o]!;
      emitDense(cx, x, w, out, inF, undefined);
    },
  },
  kerasLayers: {
    // Keras kernel [in, out]; a flattened NHWC input's element order (perm) is absorbed into the weight.
    Dense: (cx) => {
      const x = cx.one();
      if (x.shape.length !== 1) {
        throw unimplemented(`layer ${cx.name} (Dense) on a per-sample rank-${x.shape.length} input is not supported; flatten first`);
      }
      const n = x.shape[0]!;
      const k = cx.weight('kernel')!;
      const units = k.shape[1]!;
      cx.expectShape(k, [n, units]);
      const weight = new Float32Array(units * n);
      for (let i = 0; i < n; i++) {
        const src = x.perm ? x.perm[i]! : i;
        for (let o = 0; o < units; o++) weight[o * n + i] = k.data[src * units + o]!;
      }
      const wName = cx.addWeight(`${cx.name}/kernel`, [units, n], weight);
      let bName: string | undefined;
      if (cx.config.use_bias !== false) {
        const b = cx.weight('bias')!;
        cx.expectShape(b, [units]);
        bName = cx.addWeight(`${cx.name}/bias`, [units], Float32Array.from(b.data));
      }
      const name = cx.addNode(cx.name, { op: 'dense', weight: wName, bias: bName }, [x.name], [units]);
      const act = String(cx.config.activation ?? 'linear');
      return cx.activation({ name, shape: [units], perm: null }, act, `${cx.name}/${act}`);
    },
  },
  kerasVariables: { Dense: (cfg) => (cfg.use_bias === false ? ['kernel'] : ['kernel', 'bias']) },
});
