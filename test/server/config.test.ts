/** Server configuration from flags and environment. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { ConfigError, defaultConfig, parseBytes, parseConfig, parseDuration, usage, type ServerConfig } from '../../server/config';

function config(argv: string[], env: NodeJS.ProcessEnv = {}): ServerConfig {
  const parsed = parseConfig(argv, env);
  assert.equal(parsed.help, false);
  return (parsed as { config: ServerConfig }).config;
}

describe('server: config', () => {
  it('has the documented defaults', () => {
    const c = config([]);
    assert.deepEqual(c, defaultConfig());
    assert.equal(c.port, 50051);
    assert.equal(c.metricsPort, 9464);
    assert.equal(c.device, 'cpu');
    assert.equal(c.defaultEngine, 'onnxruntime');
  });

  it('reads the environment, and flags win over it', () => {
    const env = {
      INTROSPECT_PORT: '7000',
      INTROSPECT_METRICS_PORT: 'off',
      INTROSPECT_MODEL_ROOT: '/srv/models',
      INTROSPECT_DATA_ROOT: 'rel/data',
      INTROSPECT_CACHE_BYTES: '512MiB',
      INTROSPECT_MAX_UPLOAD_BYTES: '1.5G',
      INTROSPECT_WORKERS: '2',
      INTROSPECT_THREADS: '4',
      INTROSPECT_DEVICE: 'CUDA',
      INTROSPECT_ENGINE: 'tfjs',
      INTROSPECT_GRACE_PERIOD: '2m',
      INTROSPECT_LOG_LEVEL: 'warn',
      INTROSPECT_HOST: '::',
    };
    const c = config([], env);
    assert.equal(c.port, 7000);
    assert.equal(c.metricsPort, null);
    assert.equal(c.modelRoot, '/srv/models');
    assert.equal(c.dataRoot, path.resolve('rel/data'));
    assert.equal(c.cacheBytes, 512 * 1024 ** 2);
    assert.equal(c.maxUploadBytes, Math.floor(1.5 * 1024 ** 3));
    assert.equal(c.workers, 2);
    assert.equal(c.intraOpThreads, 4);
    assert.equal(c.device, 'cuda');
    assert.equal(c.defaultEngine, 'tfjs');
    assert.equal(c.gracePeriodMs, 120_000);
    assert.equal(c.logLevel, 'warn');
    assert.equal(c.host, '::');
    const f = config(['--port', '0', '--metrics-port=0', '--grace-period', '500ms', '--log-level', 'debug'], env);
    assert.equal(f.port, 0);
    assert.equal(f.metricsPort, 0);
    assert.equal(f.gracePeriodMs, 500);
    assert.equal(f.logLevel, 'debug');
    assert.equal(f.workers, 2);
  });

  it('rejects bad values naming the flag or variable', () => {
    const bad: Array<[string[], NodeJS.ProcessEnv, RegExp]> = [
      [['--port', '70000'], {}, /--port: 70000 is outside 0\.\.65535/],
      [['--port'], {}, /--port needs a value/],
      [[], { INTROSPECT_PORT: 'http' }, /INTROSPECT_PORT: 'http' is not a whole number/],
      [['--device', 'tpu'], {}, /--device: 'tpu' is not one of cpu, cuda, webgpu/],
      [['--cache-bytes', 'lots'], {}, /--cache-bytes: 'lots' is not a size/],
      [['--grace-period', 'soon'], {}, /'soon' is not a duration/],
      [['--log-level', 'loud'], {}, /'loud' is not one of/],
      [['--frobnicate'], {}, /unknown option '--frobnicate'/],
      [['--workers', '0'], {}, /--workers: 0 is outside 1\.\.1024/],
    ];
    for (const [argv, env, message] of bad) {
      assert.throws(() => parseConfig(argv, env), (err: unknown) => err instanceof ConfigError && message.test(err.message), argv.join(' '));
    }
  });

  it('takes the webgpu device, and --allow-cpu-fallback as a switch or with a value', () => {
    assert.equal(config(['--device', 'webgpu']).device, 'webgpu');
    assert.equal(config(['--device', 'WebGPU']).device, 'webgpu');
    assert.equal(config([]).allowCpuFallback, false);
    assert.equal(config(['--allow-cpu-fallback']).allowCpuFallback, true);
    assert.equal(config(['--allow-cpu-fallback', '--device', 'cuda']).device, 'cuda', 'the switch takes no value');
    assert.equal(config(['--allow-cpu-fallback=false']).allowCpuFallback, false);
    assert.throws(() => config(['--allow-cpu-fallback=maybe']), /--allow-cpu-fallback: 'maybe' is not true or false/);
  });

  it('parses sizes and durations', () => {
    assert.equal(parseBytes('1048576', 'x'), 1048576);
    assert.equal(parseBytes('100k', 'x'), 102400);
    assert.equal(parseBytes('2GiB', 'x'), 2 * 1024 ** 3);
    assert.equal(parseDuration('10', 'x'), 10_000);
    assert.equal(parseDuration('1.5s', 'x'), 1500);
  });

  it('answers --help with every option and its variable', () => {
    assert.deepEqual(parseConfig(['--port', '1', '--help'], {}), { help: true });
    const text = usage();
    for (const s of ['--port', 'INTROSPECT_PORT', '--metrics-port', 'INTROSPECT_METRICS_PORT', '--model-root', '--data-root', '--cache-bytes', '--max-upload-bytes', '--workers', '--threads', '--device', '--engine', '--grace-period', '--log-level']) {
      assert.ok(text.includes(s), s);
    }
  });
});
