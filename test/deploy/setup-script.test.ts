/**
 * scripts/setup.sh, as far as a test may run it without installing anything: it parses, documents its
 * options, and rejects unknown ones. (Its install paths were exercised by hand: see the deploy notes.)
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const SCRIPT = path.join(process.cwd(), 'scripts', 'setup.sh');

describe('scripts/setup.sh', function () {
  it('is valid bash', function () {
    const r = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });

  it('prints its usage with --help and names every option and optional package', function () {
    const r = spawnSync('bash', [SCRIPT, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const word of ['--with-training', '--no-system', '--force-npm', 'dataset-fashion-mnist', 'chromium',
      'python3-torch', 'libopenblas0-pthread', 'mesa-vulkan-drivers', 'bookworm-backports', 'ONNXRUNTIME_NODE_INSTALL_CUDA=skip']) {
      assert.ok(r.stdout.includes(word), `usage mentions ${word}`);
    }
  });

  it('rejects an unknown option before doing anything', function () {
    const r = spawnSync('bash', [SCRIPT, '--bogus'], { encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown option '--bogus'/);
    assert.equal(r.stdout, '');
  });
});
