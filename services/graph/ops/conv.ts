/**
 * 2-D convolution (groups, strides, pads, dilations). Its backward and its device-specific forward forms
 * (conv as one dense matrix, batch tiles) live in the attribution builder and the forward emitter
 * (services/graph/backward.ts, ir-to-onnx.ts); this module holds the plain forms.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { IrOp } from '../ir';
import { explicitPads } from '../../engines/tfjs/layout';
import { invalidArgument } from '../../errors';
import { defineOp, type KerasReadContext, type KerasValue } from './op';
import { windowSpatial } from './shape-util';
import { kerasPads, kerasPair, onnxPads, onnxPair } from './window';

const toF32 = (d: Float32Array | Float64Array): Float32Array => (d instanceof Float32Array ? d : Float32Array.from(d));

export const conv = defineOp({
  op: 'conv',
  summary: '2-D convolution, weight [Cout, Cin/group, kH, kW]',
  shape: (op, [x], cx) => {
    const w = cx.weight(op.weight);
    if (x![0] !== w.shape[1]! * op.group) {
      throw invalidArgument(`${cx.what}: input has ${x![0]} channels, weight [${w.shape}] with group ${op.group} expects ${w.shape[1]! * op.group}`);
    }
    return [w.shape[0]!, ...windowSpatial(x!, cx.what, op.kernel, op.strides, op.pads, op.dilations, false)];
  },
  weights: (op) => (op.bias ? [op.weight, op.bias] : [op.weight]),
  emitOnnx: (op, cx, _n, [x], o) => {
    const ins = [x!, cx.init(op.weight)];
    if (op.bias) ins.push(cx.init(op.bias));
    return cx.b.node(
      'Conv',
      ins,
      {
        kernel_shape: { ints: op.kernel },
        strides: { ints: op.strides },
        pads: { ints: op.pads },
        dilations: { ints: op.dilations },
        group: { i: op.group },
      },
      o,
    );
  },
  tfjs: (op, [x], { pm, node }) => {
    const info = pm.convInfo(node);
    const filters = pm.convFilters(node);
    const pads = explicitPads(op.pads);
    const x4 = x as tf.Tensor4D;
    let y: tf.Tensor4D;
    if (info.kind === 'standard') y = tf.conv2d(x4, filters[0]!, op.strides, pads, 'NHWC', op.dilations);
    else if (info.kind === 'depthwise') y = tf.depthwiseConv2d(x4, filters[0]!, op.strides, pads, 'NHWC', op.dilations);
    else {
      const parts = tf.split(x4, op.group, 3);
      y = tf.concat(parts.map((p, i) => tf.conv2d(p as tf.Tensor4D, filters[i]!, op.strides, pads, 'NHWC', op.dilations)), 3);
    }
    const b = pm.bias(node, op.bias);
    return b ? tf.add(y, b) : y;
  },
  onnx: {
    Conv: (cx) => {
      const x = cx.dataIn(0);
      const w = cx.constIn(1, 'the weight');
      if (!w || w.dims.length !== 4) return cx.fail(`weight must be 4-D (2-D convolution), got [${w?.dims}]`);
      const b = cx.constIn(2, 'the bias');
      const kernel: [number, number] = [w.dims[2]!, w.dims[3]!];
      const ks = cx.attrs.ints('kernel_shape');
      if (ks && (ks.length !== 2 || ks[0] !== kernel[0] || ks[1] !== kernel[1])) return cx.fail(`kernel_shape [${ks}] does not match weight [${w.dims}]`);
      const strides = onnxPair(cx, 'strides', 1);
      const dilations = onnxPair(cx, 'dilations', 1);
      const pads = onnxPads(cx, cx.shapeOf(x).slice(1), kernel, strides, dilations);
      const group = cx.attrs.int('group', 1);
      const weight = cx.newWeight(cx.inputName(1), w.dims, toF32(w.data));
      const bias = b ? cx.newWeight(cx.inputName(2), [w.dims[0]!], toF32(b.data)) : undefined;
      if (b && b.data.length !== w.dims[0]) return cx.fail(`bias has ${b.data.length} values for ${w.dims[0]} output channels`);
      cx.bindOut(cx.emit({ op: 'conv', weight, bias, kernel, strides, pads, dilations, group }, [x]));
    },
  },
  kerasLayers: {
    Conv2D: (cx) => kerasConv(cx, false),
    DepthwiseConv2D: (cx) => kerasConv(cx, true),
  },
  kerasVariables: {
    Conv2D: (cfg) => (cfg.use_bias === false ? ['kernel'] : ['kernel', 'bias']),
    DepthwiseConv2D: (cfg) => (cfg.use_bias === false ? ['kernel'] : ['kernel', 'bias']),
  },
});

/** Keras Conv2D / DepthwiseConv2D: kernels [kh, kw, cin/g, cout] / [kh, kw, cin, mult] transposed to the IR's. */
function kerasConv(cx: KerasReadContext, depthwise: boolean): KerasValue {
  const cfg = cx.config;
  const x = cx.one();
  const [cin, h, w] = cx.requireMap(x);
  const kernel = kerasPair(cfg.kernel_size, cx.name);
  const strides = kerasPair(cfg.strides ?? 1, cx.name);
  const dilations = kerasPair(cfg.dilation_rate ?? 1, cx.name);
  const pads = kerasPads(String(cfg.padding ?? 'valid'), [h, w], kernel, strides, dilations, cx.name);
  const [kh, kw] = kernel;
  let weight: Float32Array;
  let cout: number;
  let group: number;
  if (depthwise) {
    // Keras 2 and tfjs-layers call it depthwise_kernel, Keras 3 kernel
    const k = cx.weight('depthwise_kernel', false) ?? cx.weight('kernel')!; // [kh, kw, cin, mult]
    const mult = k.shape[3]!;
    cx.expectShape(k, [kh, kw, cin, mult]);
    cout = cin * mult;
    group = cin;
    weight = new Float32Array(cout * kh * kw);
    for (let c = 0; c < cin; c++)
      for (let m = 0; m < mult; m++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) weight[((c * mult + m) * kh + i) * kw + j] = k.data[((i * kw + j) * cin + c) * mult + m]!;
  } else {
    const k = cx.weight('kernel')!; // [kh, kw, cin / g, cout]
    group = Number(cfg.groups ?? 1);
    const cpg = cin / group;
    cout = k.shape[3]!;
    cx.expectShape(k, [kh, kw, cpg, cout]);
    weight = new Float32Array(cout * cpg * kh * kw);
    for (let o = 0; o < cout; o++)
      for (let c = 0; c < cpg; c++)
        for (let i = 0; i < kh; i++)
          for (let j = 0; j < kw; j++) weight[((o * cpg + c) * kh + i) * kw + j] = k.data[((i * kw + j) * cpg + c) * cout + o]!;
  }
  const wName = cx.addWeight(`${cx.name}/kernel`, [cout, depthwise ? 1 : cin / group, kh, kw], weight);
  let bName: string | undefined;
  if (cfg.use_bias !== false) {
    const b = cx.weight('bias')!;
    cx.expectShape(b, [cout]);
    bName = cx.addWeight(`${cx.name}/bias`, [cout], Float32Array.from(b.data));
  }
  const ho = Math.floor((h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0]) + 1;
  const wo = Math.floor((w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1]) + 1;
  const op: IrOp = { op: 'conv', weight: wName, bias: bName, kernel, strides, pads, dilations, group };
  const name = cx.addNode(cx.name, op, [x.name], [cout, ho, wo]);
  const z: KerasValue = { name, shape: [cout, ho, wo], perm: null };
  const act = String(cfg.activation ?? 'linear');
  if (act === 'linear') return { ...z, foldable: { node: cx.nodeOf(name), layer: cx.name } };
  return cx.activation(z, act, `${cx.name}/${act}`);
}
