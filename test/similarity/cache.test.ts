import * as assert from 'node:assert/strict';
import { approximateBytes, cacheKey, canonicalJson, ResultCache } from '../../services/analysis/cache';

describe('analysis result cache', () => {
  it('canonical JSON ignores key order at every level and keeps array order', () => {
    const a = { b: 1, a: { y: [3, 1], x: 'q' }, c: undefined };
    const b = { a: { x: 'q', y: [3, 1] }, b: 1 };
    assert.equal(canonicalJson(a), canonicalJson(b));
    assert.equal(canonicalJson(a), '{"a":{"x":"q","y":[3,1]},"b":1}');
    assert.notEqual(canonicalJson({ y: [1, 3] }), canonicalJson({ y: [3, 1] }));
    assert.equal(canonicalJson({ t: Float32Array.of(0.5, 2) }), '{"t":[0.5,2]}');
    assert.equal(canonicalJson({ n: 10n }), '{"n":"10"}');
  });

  it('keys separate model, data set and parameters', () => {
    const k = cacheKey({ modelSha256: 'abc', dataset: 'cifar', params: { method: 1, layers: [0, 1] } });
    assert.equal(k, cacheKey({ modelSha256: 'abc', dataset: 'cifar', params: { layers: [0, 1], method: 1 } }));
    assert.notEqual(k, cacheKey({ modelSha256: 'abd', dataset: 'cifar', params: { method: 1, layers: [0, 1] } }));
    assert.notEqual(k, cacheKey({ modelSha256: 'abc', dataset: 'mnist', params: { method: 1, layers: [0, 1] } }));
    assert.notEqual(k, cacheKey({ modelSha256: 'abc', dataset: 'cifar', params: { method: 2, layers: [0, 1] } }));
  });

  it('counts hits and misses and evicts the least recently used entries beyond the byte bound', async () => {
    const cache = new ResultCache<Float32Array>({ maxBytes: 1000, sizeOf: (v) => v.byteLength });
    cache.set('a', new Float32Array(100)); // 400 B
    cache.set('b', new Float32Array(100)); // 400 B
    assert.ok(cache.get('a')); // a is now more recent than b
    cache.set('c', new Float32Array(100)); // 1200 B > 1000: b goes
    assert.equal(cache.get('b'), undefined);
    assert.ok(cache.get('a'));
    assert.ok(cache.get('c'));
    assert.equal(cache.hits, 3);
    assert.equal(cache.misses, 1);
    assert.equal(cache.bytes, 800);
    assert.equal(cache.entries, 2);
    assert.equal(cache.set('huge', new Float32Array(1000)), false);
    assert.equal(cache.has('huge'), false);

    let computed = 0;
    const compute = async (): Promise<Float32Array> => {
      computed++;
      return Float32Array.of(1, 2);
    };
    const first = await cache.getOrCompute('d', compute);
    const second = await cache.getOrCompute('d', compute);
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.equal(computed, 1);
    assert.deepEqual(Array.from(second.value), [1, 2]);
    assert.equal(cache.misses, 2);
    assert.equal(cache.hits, 4);
  });

  it('estimates the bytes of results made of typed arrays', () => {
    const bytes = approximateBytes({ values: new Float32Array(256), images: [new Float32Array(10), new Float32Array(10)] });
    assert.ok(bytes >= 1024 + 80 && bytes < 1024 + 80 + 200, String(bytes));
  });
});
