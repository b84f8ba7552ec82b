/** ModelRegistry's byte-bounded cache: eviction, release from the engines, reload on the next get. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IntrospectError } from '../../services/errors';
import type { LoadedModel } from '../../services/models/model';
import { ModelRegistry, modelFootprint } from '../../services/models/registry';
import { needShared, sharedPath } from '../support/shared';
import { BUNDLED_MODEL } from '../support/server';

async function rejects(p: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IntrospectError, String(err));
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, message);
    return true;
  });
}

describe('model registry: cache', function () {
  this.timeout(60_000);
  let root: string;
  const small = 'mnist_cnn.onnx';
  const large = 'resnet20_cifar10.onnx';
  let smallBytes: number;
  let largeBytes: number;

  before(async function () {
    needShared(this, `models/${large}`);
    root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-registry-'));
    await fs.promises.copyFile(BUNDLED_MODEL, path.join(root, small));
    await fs.promises.copyFile(sharedPath(`models/${large}`), path.join(root, large));
    // Footprints measured with a roomy registry.
    const probe = new ModelRegistry({ modelRoot: root, cacheBytes: 1e9, maxUploadBytes: 1e9 });
    smallBytes = modelFootprint(await probe.loadFromPath({ name: 's', path: small }));
    largeBytes = modelFootprint(await probe.loadFromPath({ name: 'l', path: large }));
    // File size plus float32 weights: the weights alone are parameters × 4 bytes.
    assert.ok(smallBytes > fs.statSync(BUNDLED_MODEL).size + 4 * 30_000);
  });
  after(async () => {
    if (root) await fs.promises.rm(root, { recursive: true, force: true });
  });

  it('evicts the least recently used model, releases it, and reads it again on the next get', async () => {
    const evicted: Array<[string, string]> = [];
    const lookups: boolean[] = [];
    const reg = new ModelRegistry({
      modelRoot: root,
      cacheBytes: largeBytes + smallBytes - 1, // one of them at a time
      maxUploadBytes: 1e9,
      onEvict: (m, reason) => evicted.push([m.name, reason]),
      onLookup: (hit) => lookups.push(hit),
    });
    const s = await reg.loadFromPath({ name: 'small', path: small });
    await reg.loadFromPath({ name: 'large', path: large });
    assert.deepEqual(evicted, [['small', 'evicted']]);
    assert.deepEqual(reg.stats().resident, 1);
    // Still registered and described without reading it again.
    assert.deepEqual(reg.list().map((d) => d.name), ['large', 'small']);
    assert.equal(reg.describe('small').sha256, s.sha256);
    // The next get reads it again (a miss) and evicts the other.
    const again = await reg.get('small');
    assert.notEqual(again, s);
    assert.equal(again.sha256, s.sha256);
    assert.deepEqual(evicted, [['small', 'evicted'], ['large', 'evicted']]);
    assert.equal(await reg.get('small'), again);
    assert.deepEqual(lookups, [false, true]);
    reg.unload('small');
    assert.deepEqual(evicted.at(-1), ['small', 'unloaded']);
    assert.deepEqual(reg.list().map((d) => d.name), ['large']);
  });

  it('forgets evicted uploads and says so', async () => {
    const reg = new ModelRegistry({ modelRoot: root, cacheBytes: largeBytes + smallBytes - 1, maxUploadBytes: 1e9 });
    await reg.loadFromBytes({ name: 'up', bytes: fs.readFileSync(BUNDLED_MODEL) });
    await reg.loadFromPath({ name: 'large', path: large });
    assert.deepEqual(reg.list().map((d) => d.name), ['large']);
    await rejects(reg.get('up'), 'not-found', /'up' was uploaded and later evicted .* upload it again/);
  });

  it('keeps the engines\' copy while another cached model has the same content', async () => {
    const released: string[] = [];
    const reg = new ModelRegistry({ modelRoot: root, cacheBytes: 1e9, maxUploadBytes: 1e9, onEvict: (m: LoadedModel) => released.push(m.name) });
    await reg.loadFromPath({ name: 'one', path: small });
    await reg.loadFromPath({ name: 'two', path: small });
    reg.unload('one');
    assert.deepEqual(released, []);
    reg.unload('two');
    assert.deepEqual(released, ['two']);
  });

  it('refuses a model larger than the whole cache and keeps nothing of it', async () => {
    const reg = new ModelRegistry({ modelRoot: root, cacheBytes: smallBytes, maxUploadBytes: 1e9 });
    await rejects(reg.loadFromPath({ name: 'large', path: large }), 'resource-exhausted', /needs \d+ bytes .* more than the whole model cache/);
    assert.deepEqual(reg.list(), []);
    await reg.loadFromPath({ name: 'large', path: small }); // the name is free again
  });

  it('refuses concurrent loads under one name', async () => {
    const reg = new ModelRegistry({ modelRoot: root, cacheBytes: 1e9, maxUploadBytes: 1e9 });
    const results = await Promise.allSettled([
      reg.loadFromPath({ name: 'same', path: small }),
      reg.loadFromPath({ name: 'same', path: large }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal((failed.reason as IntrospectError).kind, 'already-exists');
    assert.equal((await reg.get('same')).source, small);
  });
});
