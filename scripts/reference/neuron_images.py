#!/usr/bin/python3
"""Independent PyTorch reference for the service's guided-backprop and deconvnet neuron images.

Regenerate the committed fixture (run from the repository root with Debian's python, which has
python3-torch 1.13 and python3-onnx 1.12; the pyenv python3 on PATH has neither):

    INTROSPECT_SHARED=/work/shared /usr/bin/python3 scripts/reference/neuron_images.py

    --shared DIR     the shared folder (default $INTROSPECT_SHARED, else ../shared)
    --out DIR        default test/fixtures/reference
    --image N        CIFAR-10 test_batch.bin image index (default 0)

It writes DIR/neuron-images.bin (float32 little-endian images, [3, 32, 32] each, back to back) and
DIR/neuron-images.json (the index: models, their conv layers, and for every image its model, layer,
channel, rule, shape and byte offset; torch/onnx versions and this command). The mocha test
test/engines/pytorch-reference.test.ts compares the service's images with it, so CI needs no torch.

Nothing of the TypeScript service is used. The model is read with the onnx package and evaluated by
the small interpreter below with torch.nn.functional (the ops vgg11_cifar10 and resnet20_cifar10 use,
plus BatchNormalization and MatMul); ReLUs are nn.ReLU modules, and the attribution rules are the
classic PyTorch backward hooks on them (as in the CNN-visualisation code the thesis follows):
  guided  : a ReLU passes its usual gradient (forward input > 0) clamped to >= 0;
  deconv  : a ReLU passes the incoming gradient clamped to >= 0, ignoring the forward sign.
Max-pool, conv, add, pads and slices keep torch's own autograd.

Objective of neuron (j, k) (SPEC.md section 2, the service's default `abs_sum`): sum |z_j[k]| where z_j
is conv layer j's output (after a batch-norm that directly follows it), before its activation; the
backward starts from the seed sign(z_j[k]) on channel k, zero elsewhere. Conv layers are the Conv nodes
in the file's node order (execution order). Channels: the first and the last live channel of every conv
layer, live meaning max |z_j[k]| >= 1e-3 x max |z_j| on this image (VGG11's weight decay left dead
channels with weights of 1e-38..1e-12, whose images peak at 1e-37..1e-17: float32 underflow, where
backends legitimately differ, e.g. tfjs' wasm backend returns exact zeros).
Input: test_batch.bin image N, preprocessed as the sidecar says: x = (p * scale - mean[c]) / std[c].
Everything is float32, one thread (deterministic).
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

MODELS = ['vgg11_cifar10', 'resnet20_cifar10']
RULES = ['guided', 'deconv']
COMMAND = 'INTROSPECT_SHARED=/work/shared /usr/bin/python3 scripts/reference/neuron_images.py'


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def sym_pads(pads, what):
    """ONNX pads [top, left, bottom, right] -> torch padding (symmetric only)."""
    if not pads:
        return (0, 0)
    half = len(pads) // 2
    if list(pads[:half]) != list(pads[half:]):
        raise ValueError(f'{what}: asymmetric pads {list(pads)} are not supported')
    return tuple(pads[:half])


def dtype_of(onnx_type):
    return {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}[onnx_type]


class OnnxModule(torch.nn.Module):
    """An ONNX graph evaluated node by node with torch; ReLUs are nn.ReLU modules (hookable)."""

    def __init__(self, model):
        super().__init__()
        self.graph = model.graph
        self.weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in self.graph.initializer}
        self.relus = torch.nn.ModuleList(torch.nn.ReLU() for n in self.graph.node if n.op_type == 'Relu')
        self.input_name = next(i.name for i in self.graph.input if i.name not in self.weights)
        self.output_name = self.graph.output[0].name

    def conv_layers(self):
        """(node name, z value name, channels) of each Conv in node order; z after a directly following BN."""
        readers = {}
        for n in self.graph.node:
            for v in n.input:
                readers.setdefault(v, []).append(n)
        out = []
        for n in self.graph.node:
            if n.op_type != 'Conv':
                continue
            z = n.output[0]
            after = readers.get(z, [])
            if len(after) == 1 and after[0].op_type == 'BatchNormalization':
                z = after[0].output[0]
            out.append({'node': n.name, 'output': z, 'channels': int(self.weights[n.input[1]].shape[0])})
        return out

    def forward(self, x):
        v = dict(self.weights)
        v[self.input_name] = x
        relu = iter(self.relus)
        for n in self.graph.node:
            a = attrs(n)
            ins = [v[i] if i else None for i in n.input]
            out = self.run(n, a, ins, relu)
            for name, value in zip(n.output, out if isinstance(out, tuple) else (out,)):
                v[name] = value
        return v

    @staticmethod
    def run(n, a, ins, relu):
        op = n.op_type
        if op == 'Conv':
            if a.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
                raise ValueError(f'{n.name}: auto_pad is not supported')
            return F.conv2d(ins[0], ins[1], ins[2] if len(ins) > 2 else None, stride=tuple(a.get('strides', [1, 1])),
                            padding=sym_pads(a.get('pads'), n.name), dilation=tuple(a.get('dilations', [1, 1])),
                            groups=a.get('group', 1))
        if op == 'BatchNormalization':
            x, scale, bias, mean, var = ins
            return F.batch_norm(x, mean, var, scale, bias, training=False, eps=a.get('epsilon', 1e-5))
        if op == 'Relu':
            return next(relu)(ins[0])
        if op == 'MaxPool':
            return F.max_pool2d(ins[0], tuple(a['kernel_shape']), stride=tuple(a.get('strides', [1, 1])),
                                padding=sym_pads(a.get('pads'), n.name), ceil_mode=bool(a.get('ceil_mode', 0)))
        if op == 'AveragePool':
            return F.avg_pool2d(ins[0], tuple(a['kernel_shape']), stride=tuple(a.get('strides', [1, 1])),
                                padding=sym_pads(a.get('pads'), n.name), ceil_mode=bool(a.get('ceil_mode', 0)),
                                count_include_pad=bool(a.get('count_include_pad', 0)))
        if op == 'GlobalAveragePool':
            return ins[0].mean(dim=(2, 3), keepdim=True)
        if op == 'Flatten':
            axis = a.get('axis', 1)
            return ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        if op == 'Reshape':
            shape = [int(s) for s in ins[1].tolist()]
            shape = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            return ins[0].reshape(shape)
        if op == 'Gemm':
            A, B = ins[0], ins[1]
            if a.get('transA', 0):
                A = A.t()
            if a.get('transB', 0):
                B = B.t()
            y = a.get('alpha', 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get('beta', 1.0) * ins[2]
            return y
        if op == 'MatMul':
            return ins[0] @ ins[1]
        if op == 'Add':
            return ins[0] + ins[1]
        if op == 'Constant':
            return torch.from_numpy(numpy_helper.to_array(a['value']).copy())
        if op == 'ConstantOfShape':
            value = torch.from_numpy(numpy_helper.to_array(a['value']).copy()) if 'value' in a else torch.zeros(1)
            return value.reshape(()).expand([int(s) for s in ins[0].tolist()]).clone()
        if op == 'Shape':
            return torch.tensor(list(ins[0].shape), dtype=torch.int64)
        if op == 'Gather':
            return torch.index_select(ins[0], a.get('axis', 0), ins[1].reshape(-1)).reshape(
                list(ins[0].shape[:a.get('axis', 0)]) + list(ins[1].shape) + list(ins[0].shape[a.get('axis', 0) + 1:]))
        if op == 'Unsqueeze':
            y = ins[0]
            for ax in sorted(int(i) for i in ins[1].tolist()):
                y = y.unsqueeze(ax)
            return y
        if op == 'Concat':
            return torch.cat(ins, dim=a['axis'])
        if op == 'Transpose':
            return ins[0].permute(*a['perm'])
        if op == 'Cast':
            return ins[0].to(dtype_of(a['to']))
        if op == 'Slice':
            x = ins[0]
            starts, ends = ins[1].tolist(), ins[2].tolist()
            axes = ins[3].tolist() if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
            steps = ins[4].tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            for s, e, ax, st in zip(starts, ends, axes, steps):
                size = x.shape[ax]
                s = s + size if s < 0 else s
                e = e + size if e < 0 else e
                if st > 0:
                    s, e = max(0, min(size, s)), max(0, min(size, e))
                elif st < 0:
                    s, e = max(0, min(size - 1, s)), max(-1, min(size - 1, e))
                else:
                    raise ValueError(f'{n.name}: Slice step 0')
                x = torch.index_select(x, ax, torch.tensor(list(range(s, e, st)), dtype=torch.int64))
            return x
        if op == 'Pad':
            mode = a.get('mode', b'constant')
            if mode not in (b'constant', 'constant'):
                raise ValueError(f'{n.name}: Pad mode {mode} is not supported')
            pads = [int(p) for p in ins[1].tolist()]
            value = float(ins[2].item()) if len(ins) > 2 and ins[2] is not None else 0.0
            rank = len(pads) // 2
            torch_pads = []  # last axis first: (begin, end) pairs
            for ax in reversed(range(rank)):
                torch_pads += [pads[ax], pads[ax + rank]]
            return F.pad(ins[0], torch_pads, value=value)
        raise ValueError(f'{n.name}: op {op} is not supported by this reference')


LIVE = 1e-3


def live_ends(z):
    """The first and the last channel of z [C, H, W] whose max |z| is at least LIVE x the layer's."""
    peak = z.abs().amax(dim=(1, 2))
    live = torch.nonzero(peak >= LIVE * peak.max()).flatten().tolist()
    return sorted({live[0], live[-1]})


def rule_hook(rule):
    if rule == 'guided':
        return lambda module, grad_in, grad_out: (grad_in[0].clamp(min=0),)
    if rule == 'deconv':
        return lambda module, grad_in, grad_out: (grad_out[0].clamp(min=0),)
    raise ValueError(rule)


def preprocessing(sidecar, channels):
    inp = sidecar['input']
    rng = inp.get('range', '').lower()
    if '/ 255' in rng or '[0,1]' in rng.replace(' ', ''):
        scale = 1 / 255
    else:
        raise ValueError(f"sidecar input.range {inp.get('range')!r}: cannot tell the pixel scale")
    mean = inp.get('mean') or [0.0] * channels
    std = inp.get('std') or [1.0] * channels
    return {'scale': scale, 'mean': mean, 'std': std}


def cifar_image(path, index):
    rec = 1 + 3072
    with open(path, 'rb') as f:
        f.seek(index * rec)
        raw = f.read(rec)
    if len(raw) != rec:
        raise ValueError(f'{path}: no image {index}')
    return raw[0], np.frombuffer(raw[1:], dtype=np.uint8).reshape(3, 32, 32)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--shared', default=os.environ.get('INTROSPECT_SHARED', os.path.join(root, '..', 'shared')))
    p.add_argument('--out', default=os.path.join(root, 'test', 'fixtures', 'reference'))
    p.add_argument('--image', type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    batch = os.path.join(args.shared, 'datasets', 'cifar-10-batches-bin', 'test_batch.bin')
    label, pixels = cifar_image(batch, args.image)
    index = {
        'generator': 'scripts/reference/neuron_images.py',
        'command': COMMAND + (f' --image {args.image}' if args.image != 0 else ''),
        'python': sys.version.split()[0],
        'torch': torch.__version__,
        'onnx': onnx.__version__,
        'objective': 'abs_sum: sum |z_j[k]|, seed sign(z_j[k]) on channel k of conv output z_j',
        'rules': {'guided': 'ReLU backward hook: usual ReLU gradient clamped to >= 0',
                  'deconv': 'ReLU backward hook: incoming gradient clamped to >= 0'},
        'image': {'file': 'datasets/cifar-10-batches-bin/test_batch.bin', 'split': 'test', 'index': args.image, 'label': int(label)},
        'data': 'neuron-images.bin',
        'dtype': 'float32 little-endian',
        'models': [],
        'images': [],
    }
    blobs = []
    offset = 0
    for name in MODELS:
        path = os.path.join(args.shared, 'models', name + '.onnx')
        with open(os.path.join(args.shared, 'models', name + '.json')) as f:
            sidecar = json.load(f)
        module = OnnxModule(onnx.load(path)).eval()
        pre = preprocessing(sidecar, 3)
        x = np.empty((1, 3, 32, 32), dtype=np.float32)
        for c in range(3):
            x[0, c] = (pixels[c].astype(np.float64) * pre['scale'] - pre['mean'][c]) / pre['std'][c]
        layers = module.conv_layers()
        with torch.no_grad():
            logits = module(torch.from_numpy(x))[module.output_name][0]
        index['models'].append({
            'name': name,
            'file': f'models/{name}.onnx',
            'sha256': sha256(path),
            'preprocessing': pre,
            'logits': [float(v) for v in logits],
            'conv_layers': [{'index': i, **layer} for i, layer in enumerate(layers)],
        })
        for rule in RULES:
            handles = [r.register_full_backward_hook(rule_hook(rule)) for r in module.relus]
            xin = torch.from_numpy(x).requires_grad_(True)
            values = module(xin)
            for j, layer in enumerate(layers):
                z = values[layer['output']]
                for k in live_ends(z[0].detach()):
                    seed = torch.zeros_like(z)
                    seed[0, k] = torch.sign(z[0, k].detach())
                    (g,) = torch.autograd.grad(z, xin, seed, retain_graph=True)
                    image = g[0].detach().numpy().astype('<f4')
                    index['images'].append({'model': name, 'layer': j, 'channel': k, 'rule': rule,
                                            'shape': list(image.shape), 'offset': offset})
                    blobs.append(image.tobytes())
                    offset += image.nbytes
            for h in handles:
                h.remove()
        print(f'{name}: {len(layers)} conv layers, logits {[round(float(v), 4) for v in logits]}', file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'neuron-images.bin'), 'wb') as f:
        f.write(b''.join(blobs))
    with open(os.path.join(args.out, 'neuron-images.json'), 'w') as f:
        json.dump(index, f, indent=1)
        f.write('\n')
    print(f'wrote {len(index["images"])} images, {offset} bytes, to {args.out}', file=sys.stderr)


if __name__ == '__main__':
    main()
