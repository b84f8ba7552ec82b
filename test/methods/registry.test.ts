/** The method registry: named methods as base rule + wrappers, defaults filled in once, errors naming the field. */
import * as assert from 'node:assert/strict';
import { IntrospectError } from '../../services/errors';
import { methodKey, methodPasses, methodRowBytes, resolveMethod } from '../../services/methods/registry';

function invalid(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof IntrospectError && e.kind === 'invalid-argument' && re.test(e.message));
}

describe('methods: registry', () => {
  it('the named methods are base rules; integrated_gradients is the gradient wrapped by IG with ig_steps / ig_baseline', () => {
    assert.deepEqual(resolveMethod({ method: 'guided' }, 4), { base: 'guided', wrappers: [] });
    assert.deepEqual(resolveMethod({ method: 'deconv' }, 4), { base: 'deconv', wrappers: [] });
    assert.deepEqual(resolveMethod({ method: 'gradient' }, 4), { base: 'gradient', wrappers: [] });
    assert.deepEqual(resolveMethod({ method: 'integrated_gradients' }, 4), { base: 'gradient', wrappers: [{ kind: 'integrated_gradients', steps: 32 }] });
    const baseline = new Float32Array(4).fill(0.5);
    assert.deepEqual(resolveMethod({ method: 'integrated_gradients', igSteps: 7, igBaseline: baseline }, 4).wrappers, [{ kind: 'integrated_gradients', steps: 7, baseline }]);
  });

  it('wrappers come after those of the name, in order, with their defaults', () => {
    const m = resolveMethod({ method: 'integrated_gradients', igSteps: 4, wrappers: [{ kind: 'input_x_gradient' }, { kind: 'smoothgrad', samples: 3 }] }, 10);
    assert.deepEqual(m, {
      base: 'gradient',
      wrappers: [
        { kind: 'integrated_gradients', steps: 4 },
        { kind: 'input_x_gradient' },
        { kind: 'smoothgrad', samples: 3, noiseLevel: 0.15, seed: 0, form: 'mean' },
      ],
    });
    assert.equal(methodPasses(m), 12);
    // Output 4 + IG (8 + 4) + input × gradient 4 + SmoothGrad mean (8 + 4) bytes per value.
    assert.equal(methodRowBytes(m, 10), 10 * (4 + 12 + 4 + 12));
    assert.equal(methodRowBytes(resolveMethod({ method: 'guided', wrappers: [{ kind: 'smoothgrad', form: 'variance' }] }, 10), 10), 10 * (4 + 20));
  });

  it('bad parameters name the field under the prefix given', () => {
    invalid(() => resolveMethod({ method: 'guided', wrappers: [{ kind: 'smoothgrad', seed: -1 }] }, 4), /^attribution\.wrappers\[0\]\.smoothgrad\.seed = -1 must be an integer/);
    invalid(() => resolveMethod({ method: 'guided', wrappers: [{ kind: 'smoothgrad', samples: 2.5 }] }, 4, 'similarity.attribution'), /^similarity\.attribution\.wrappers\[0\]\.smoothgrad\.samples = 2\.5/);
    invalid(() => resolveMethod({ method: 'integrated_gradients', igBaseline: new Float32Array(3) }, 4), /^attribution\.ig_baseline has 3 values, the model's input has 4/);
    invalid(() => resolveMethod({ method: 'guided', wrappers: [{ kind: 'integrated_gradients', baseline: new Float32Array(5) }] }, 4), /^attribution\.wrappers\[0\]\.integrated_gradients\.baseline has 5 values/);
    invalid(() => resolveMethod({ method: 'lrp' as 'guided' }, 4), /^attribution\.method: unknown attribution method 'lrp'/);
  });

  it('the cache key holds what determines the images, baselines by hash', () => {
    const a = new Float32Array(4).fill(1);
    const b = new Float32Array(4).fill(2);
    const key = (baseline: Float32Array) => JSON.stringify(methodKey({ method: 'integrated_gradients', igBaseline: baseline }, 4));
    assert.equal(key(a), key(Float32Array.from(a)));
    assert.notEqual(key(a), key(b));
    assert.match(key(a), /"baseline":"[0-9a-f]{64}"/);
    assert.notEqual(
      JSON.stringify(methodKey({ method: 'guided', wrappers: [{ kind: 'smoothgrad', seed: 1 }] }, 4)),
      JSON.stringify(methodKey({ method: 'guided', wrappers: [{ kind: 'smoothgrad', seed: 2 }] }, 4)),
    );
  });
});
