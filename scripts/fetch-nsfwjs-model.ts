/**
 * `node dist/scripts/fetch-nsfwjs-model.js [DIR]`: a real Keras-converted tfjs LayersModel with its weights,
 * for the tfjs format tests: nsfwjs' MobileNetV2 (Keras 2.2.4 → tensorflowjs_converter, topology under
 * `model_config`, every weight uint8-quantized; 224×224×3 input in [0, 1], 5 classes; MIT licence, Infinite Red).
 *
 * The npm package (nsfwjs@4.4.0, 25 MB packed; not a dependency of this project) bundles its model files as
 * JavaScript modules: model.min.js exports the model.json object, group1-shard1of1.min.js the shard as base64.
 * This script packs the package with npm into a temporary folder, reads those two modules and writes
 * DIR/model.json (shard path renamed to group1-shard1of1.bin) and DIR/group1-shard1of1.bin, plus
 * DIR/SOURCE.txt. DIR defaults to test/fixtures/tfjs/nsfwjs_mobilenet_v2, where the committed copy the tests
 * read lives (2.7 MB); the script is how that copy was made and can be checked again.
 */
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const PACKAGE = 'nsfwjs@4.4.0';
const MODEL = 'package/dist/models/mobilenet_v2';
/** sha256 of the decoded shard of nsfwjs 4.4.0's mobilenet_v2, checked after decoding. */
const SHARD_SHA256 = '8e7dddbb16acacc1bf1601b1b8a761e730ff934b7f2d7771312b2f000e5f5f13';

function main(): void {
  const out = path.resolve(process.argv[2] ?? path.join(process.cwd(), 'test', 'fixtures', 'tfjs', 'nsfwjs_mobilenet_v2'));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsfwjs-'));
  try {
    execFileSync('npm', ['pack', PACKAGE, '--pack-destination', tmp, '--silent'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const tgz = fs.readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${PACKAGE} wrote no tarball`);
    execFileSync('tar', ['xzf', path.join(tmp, tgz), '-C', tmp, `${MODEL}/model.min.js`, `${MODEL}/group1-shard1of1.min.js`]);
    const load = (file: string): unknown => {
      const m = require(path.join(tmp, MODEL, file)) as { default?: unknown };
      return m.default ?? m;
    };
    const json = load('model.min.js') as { weightsManifest: Array<{ paths: string[] }> };
    const base64 = load('group1-shard1of1.min.js');
    if (typeof base64 !== 'string') throw new Error('the shard module does not export a base64 string');
    const shard = Buffer.from(base64, 'base64');
    const sha = crypto.createHash('sha256').update(shard).digest('hex');
    if (sha !== SHARD_SHA256) throw new Error(`shard sha256 ${sha}, expected ${SHARD_SHA256}`);
    if (json.weightsManifest.length !== 1 || json.weightsManifest[0]!.paths.length !== 1) throw new Error('unexpected weight manifest layout');
    json.weightsManifest[0]!.paths = ['group1-shard1of1.bin'];
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'model.json'), JSON.stringify(json));
    fs.writeFileSync(path.join(out, 'group1-shard1of1.bin'), shard);
    fs.writeFileSync(
      path.join(out, 'SOURCE.txt'),
      `nsfwjs MobileNetV2 (${PACKAGE}, dist/models/mobilenet_v2), MIT licence, Copyright (c) 2019 Infinite Red, Inc.\n` +
        `Decoded from the package's JavaScript-wrapped model files by scripts/fetch-nsfwjs-model.ts.\nshard sha256 ${sha}\n`,
    );
    console.log(`wrote ${out} (shard ${shard.length} bytes, sha256 ${sha})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main();
