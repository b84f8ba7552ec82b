/**
 * Image decoding off the event loop (issue 14, gap 1) over a real loopback server: a PNG bomb (3 PNGs
 * declaring 8192×8192 zeros, ≈190 kB of request) is refused from its headers before any decoding, naming
 * the limit, the image and its size; while large legal images decode in the worker threads, health
 * checks keep answering (p99 under 100 ms over a bounded number of calls).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, credentials, status } from '@grpc/grpc-js';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { parseConfig } from '../../server/config';
import { Split } from '../../api/generated/introspect/v1/common';
import { decodePixels, encodePng } from '../../services/images/png';
import { BUNDLED_MODEL, grpcError, startTestServer, type TestServer } from '../support/server';
import { mnist } from '../rpc/support';
import { zeroPng } from './png-bombs';

/** One grpc.health.v1 Check of the whole server; resolves with its latency in ms. */
function timedHealthCheck(client: Client): Promise<number> {
  const id = (b: Buffer): Buffer => b;
  const t0 = performance.now();
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (err, res) => {
      if (err || !res) return reject(err ?? new Error('no health answer'));
      assert.equal(res[1], 1, 'SERVING');
      resolve(performance.now() - t0);
    }),
  );
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('production: image decoding off the event loop, pixel budget before decoding', function () {
  this.timeout(180_000);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ models: [BUNDLED_MODEL], config: { decodeThreads: 1 } });
    await ts.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
  });
  after(async () => {
    await ts?.close();
  });

  it('parses --max-image-pixels, --max-request-pixels and --decode-threads (flags and environment)', () => {
    const p = parseConfig(['--max-image-pixels', '4M', '--decode-threads=3'], { INTROSPECT_MAX_REQUEST_PIXELS: '1000000' });
    assert.ok(!p.help);
    assert.equal(p.config.maxImagePixels, 4_000_000);
    assert.equal(p.config.maxRequestPixels, 1_000_000);
    assert.equal(p.config.decodeThreads, 3);
    const d = parseConfig([], {});
    assert.ok(!d.help);
    assert.equal(d.config.maxImagePixels, 4096 * 4096);
    assert.equal(d.config.maxRequestPixels, 64 * 1024 * 1024);
    assert.throws(() => parseConfig(['--max-image-pixels', '0'], {}), /must be a positive count/);
  });

  it('decodes PNG images in the workers to the same logits as the raw pixels', async () => {
    const m = mnist('test');
    const pixels = m.images.subarray(0, 784);
    const viaTensor = await ts.client.predict({ model: 'cnn', images: { shape: [1, 28, 28, 1], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(pixels) } });
    const viaPng = await ts.client.predict({ model: 'cnn', encoded: [encodePng(pixels, 28, 28, 1)] });
    assert.deepEqual(viaPng.predictions[0]!.logits, viaTensor.predictions[0]!.logits);
  });

  it('refuses 3 PNGs of 8192×8192 zeros from their headers, naming the limit, the image and its size', async () => {
    const fresh = await startTestServer({ models: [BUNDLED_MODEL] });
    try {
      await fresh.client.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
      const bomb = zeroPng(8192, 8192);
      const encoded = [bomb, bomb, bomb];
      const bytes = encoded.reduce((a, b) => a + b.length, 0);
      assert.ok(bytes < 300_000, `the request is small (${bytes} bytes)`);
      const e = await grpcError(() => fresh.client.predict({ model: 'cnn', encoded }));
      assert.equal(e.code, status.RESOURCE_EXHAUSTED);
      assert.match(e.details, /^encoded\[0\]: 8192×8192 = 67108864 pixels is over the server's limit of 16777216 pixels per image \(--max-image-pixels\)/);
      assert.equal(fresh.server.app.images.workers, 0, 'no decoder was even started');
      // Legal images, too many pixels together: the per-request budget.
      const big = zeroPng(4096, 4096);
      const e2 = await grpcError(() => fresh.client.predict({ model: 'cnn', encoded: [big, big, big, big, big] }));
      assert.equal(e2.code, status.RESOURCE_EXHAUSTED);
      assert.match(e2.details, /^encoded: 5 images of 83886080 pixels in all is over the server's limit of 67108864 pixels per request \(--max-request-pixels\)/);
      assert.equal(fresh.server.app.images.workers, 0, 'nothing was decoded');
      // The same budget guards NeuronImages' encoded input.
      const e3 = await grpcError(async () => {
        for await (const _ of fresh.client.neuronImages({ model: 'cnn', input: { source: { $case: 'encoded', value: bomb } } })) void _;
      });
      assert.equal(e3.code, status.RESOURCE_EXHAUSTED);
      assert.match(e3.details, /input\.encoded: 8192×8192 = 67108864 pixels is over the server's limit/);
    } finally {
      await fresh.close();
    }
  });

  it('decodes the files of image-folder data sets in the worker threads too, to the same pixels', async () => {
    const fresh = await startTestServer({});
    try {
      const m = mnist('test');
      const files: string[] = [];
      for (const split of ['train', 'test']) {
        for (const cls of ['a', 'b']) {
          const dir = path.join(fresh.dataRoot, 'digits', split, cls);
          fs.mkdirSync(dir, { recursive: true });
          for (let i = 0; i < 3; i++) {
            const k = files.length;
            fs.writeFileSync(path.join(dir, `${i}.png`), encodePng(m.images.subarray(k * 784, (k + 1) * 784), 28, 28, 1));
            if (split === 'test') files.push(path.join(dir, `${i}.png`));
            else files.push('');
          }
        }
      }
      await fresh.client.registerDataset({ name: 'digits', path: 'digits' });
      assert.equal(fresh.server.app.images.workers, 0);
      const samples: Buffer[] = [];
      for await (const smp of fresh.client.getSamples({ dataset: 'digits', split: Split.SPLIT_TEST, limit: 6 })) samples.push(Buffer.from(smp.pixels!.data));
      assert.ok(fresh.server.app.images.workers > 0, 'the decoder threads did the work');
      const expected = files.filter((f) => f !== '').map((f) => Buffer.from(decodePixels(fs.readFileSync(f)).pixels));
      assert.equal(samples.length, 6);
      samples.forEach((px, i) => assert.ok(px.equals(expected[i]!), `sample ${i} has the file's pixels`));
    } finally {
      await fresh.close();
    }
  });

  it('keeps health checks answering (p99 under 100 ms) while large legal images decode', async () => {
    const big = zeroPng(4096, 4096); // 16,777,216 pixels: exactly the per-image limit
    const health = new Client(ts.address, credentials.createInsecure());
    try {
      await timedHealthCheck(health); // connect first
      let predicted = false;
      const call = ts.client.predict({ model: 'cnn', encoded: [big, big, big, big] }).then((r) => {
        predicted = true;
        return r;
      });
      const latencies: number[] = [];
      let duringDecode = 0;
      for (let i = 0; i < 60; i++) {
        latencies.push(await timedHealthCheck(health));
        if (!predicted) duringDecode++;
        await sleep(20);
      }
      const res = await call;
      assert.equal(res.predictions.length, 4);
      assert.ok(duringDecode >= 10, `health checks overlapped the decoding (${duringDecode} of them did)`);
      latencies.sort((a, b) => a - b);
      const p99 = latencies[Math.ceil(0.99 * latencies.length) - 1]!;
      const p50 = latencies[Math.floor(latencies.length / 2)]!;
      console.log(`      health during decoding: ${latencies.length} checks, ${duringDecode} while decoding, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
      assert.ok(p99 < 100, `health p99 ${p99.toFixed(1)} ms`);
    } finally {
      health.close();
    }
  });
});
