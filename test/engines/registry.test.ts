/**
 * Engines by registration (services/engines/registry.ts): names and priorities, lazy start once,
 * fallback to the next engine with every failure collected, unknown names. The failures are real ones:
 * the real onnxruntime factory asked for a device it does not have, the real tfjs factory asked for a
 * backend that does not exist.
 */
import * as assert from 'node:assert/strict';
import { createEngines, engineRegistry, EngineRegistry, onnxruntimeFactory, tfjsFactory } from '../../services/engines';
import { ORT_DEVICES } from '../../services/engines/onnxruntime/devices';
import { IntrospectError } from '../../services/errors';

const quiet = (): void => undefined;

/** A registry of the two real engines under the given priorities. */
function registry(ort: number, tfjs: number): EngineRegistry {
  const r = new EngineRegistry();
  r.register('onnxruntime', onnxruntimeFactory, ort, ORT_DEVICES);
  r.register('tfjs', tfjsFactory, tfjs);
  return r;
}

function kindOf(err: unknown): string {
  assert.ok(err instanceof IntrospectError, `expected an IntrospectError, got ${String(err)}`);
  return err.kind;
}

describe('engines: registry', function () {
  this.timeout(60_000);

  it('the process registry holds the built-in engines, onnxruntime first; devices come from the engines that take one', () => {
    assert.deepEqual(engineRegistry.names(), ['onnxruntime', 'tfjs']);
    assert.deepEqual(engineRegistry.devices(), [...ORT_DEVICES]);
    assert.ok(engineRegistry.has('tfjs'));
    assert.ok(!engineRegistry.has('torch'));
  });

  it('an engine gets the device where it lists it, chooses its own for another engine\'s device, and refuses one no engine lists', () => {
    const seen: Array<string | undefined> = [];
    const r = new EngineRegistry();
    r.register('onnxruntime', onnxruntimeFactory, 2, ORT_DEVICES);
    r.register('tfjs', (s) => (seen.push(s.device), tfjsFactory(s)), 1, ['cpu', 'webgpu']);
    r.engines({ device: 'webgpu', log: quiet }).instance('tfjs');
    r.engines({ device: 'cuda', log: quiet }).instance('tfjs');
    assert.deepEqual(seen, ['webgpu', undefined]);
    assert.throws(() => r.engines({ device: 'tpu', log: quiet }).instance('tfjs'), /device 'tpu' is not one of cpu, webgpu/);
  });

  it('names come out by priority, whatever the registration order; a name cannot be taken by another factory', () => {
    assert.deepEqual(registry(1, 2).names(), ['tfjs', 'onnxruntime']);
    assert.deepEqual(registry(2, 1).names(), ['onnxruntime', 'tfjs']);
    const r = registry(1, 2);
    assert.throws(() => r.register('tfjs', onnxruntimeFactory, 3), /already registered with another factory/);
    r.register('onnxruntime', onnxruntimeFactory, 5, ORT_DEVICES); // same factory: a new priority
    assert.deepEqual(r.names(), ['onnxruntime', 'tfjs']);
    assert.throws(() => r.register('Bad Name', tfjsFactory, 1), /engine name 'Bad Name'/);
  });

  it('resolving no names starts the engine of highest priority, once; a second resolve returns the same engine', async () => {
    const set = registry(1, 2).engines({ log: quiet, options: { onnxruntime: { workers: 1 } } });
    try {
      const a = await set.resolve();
      assert.equal(a.kind, 'tfjs');
      assert.equal(await set.resolve(), a);
      assert.deepEqual(set.made().map((e) => e.kind), ['tfjs'], 'onnxruntime was never made');
    } finally {
      await set.close();
    }
  });

  it('falls back to the next engine when one fails to start (onnxruntime on a device it does not have)', async () => {
    const set = registry(2, 1).engines({ device: 'tpu', log: quiet });
    try {
      const e = await set.resolve();
      assert.equal(e.kind, 'tfjs');
      assert.equal(kindOf(await set.start('onnxruntime').catch((err: unknown) => err)), 'invalid-argument');
      assert.throws(() => set.get('onnxruntime'), /engine onnxruntime failed to start: device 'tpu' is not one of cpu, cuda, webgpu/);
    } finally {
      await set.close();
    }
  });

  it('when every engine fails, one error carries each engine\'s message', async () => {
    const set = registry(2, 1).engines({ log: quiet, options: { onnxruntime: { workers: 0 }, tfjs: { backend: 'abacus' } } });
    try {
      const err = await set.resolve().then(
        () => assert.fail('expected no engine to start'),
        (e: unknown) => e,
      );
      assert.equal(kindOf(err), 'invalid-argument');
      const message = (err as Error).message;
      assert.match(message, /no engine could be started/);
      assert.match(message, /\[onnxruntime\] .*workers/);
      assert.match(message, /\[tfjs\] unknown tfjs backend abacus/);
      assert.ok(message.indexOf('[onnxruntime]') < message.indexOf('[tfjs]'), 'in the order tried');
    } finally {
      await set.close();
    }
  });

  it('resolving a list tries only those names, in the order given', async () => {
    const set = registry(2, 1).engines({ log: quiet, options: { tfjs: { backend: 'abacus' } } });
    try {
      const err = await set.resolve(['tfjs']).catch((e: unknown) => e);
      assert.match((err as Error).message, /^no engine could be started: \[tfjs\] unknown tfjs backend abacus$/);
      assert.deepEqual(set.made(), [], 'onnxruntime was not tried');
    } finally {
      await set.close();
    }
  });

  it('an unknown name is INVALID_ARGUMENT naming the known engines, in resolve, start and get', async () => {
    const set = registry(2, 1).engines({ log: quiet });
    try {
      for (const f of [() => set.resolve(['torch', 'tfjs']), () => set.start('torch'), async () => set.get('torch')]) {
        const err = await f().catch((e: unknown) => e);
        assert.equal(kindOf(err), 'invalid-argument');
        assert.match((err as Error).message, /unknown engine 'torch' \(known: onnxruntime, tfjs\)/);
      }
    } finally {
      await set.close();
    }
  });

  it('createEngines: the built-in engines by name, statuses of the engines started, workers of the largest pool', async () => {
    const engines = createEngines({ onnxruntime: { workers: 2 }, log: quiet });
    try {
      await engines.ready();
      assert.equal(engines.engineFor('onnxruntime'), engines.onnxruntime);
      assert.equal(engines.engineFor('tfjs'), engines.tfjs);
      assert.deepEqual(engines.statuses().map((s) => s.kind), ['onnxruntime', 'tfjs']);
      assert.equal(engines.workers, 2);
      assert.throws(() => engines.engineFor('torch'), /unknown engine 'torch' \(known: onnxruntime, tfjs\)/);
    } finally {
      await engines.close();
    }
  });
});
