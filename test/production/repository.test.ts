/**
 * A model repository loaded at start (issue 14, gaps 5 and 6) over real loopback servers: a restart
 * with the same repository comes back with its models and data sets, and readiness (gRPC health,
 * /healthz) waits until they are loaded; a bad entry leaves the server NOT_SERVING with a reason naming
 * the entry; a missing model or data root makes the server not ready; /livez stays 200 throughout.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, credentials } from '@grpc/grpc-js';
import { ElementType } from '../../api/generated/introspect/v1/common';
import { parseConfig } from '../../server/config';
import { parseRepository } from '../../services/repository/repository';
import { BUNDLED_MODEL, startTestServer, type TestServer } from '../support/server';
import { mnist } from '../rpc/support';

const SERVING = 1;
const NOT_SERVING = 2;

function grpcHealth(address: string): Promise<number> {
  const c = new Client(address, credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (err, res) => {
      c.close();
      if (err || !res) return reject(err ?? new Error('no health answer'));
      resolve(res.length >= 2 && res[0] === 0x08 ? res[1]! : 0);
    }),
  );
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.text() };
}

const CLASS_NAMES = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

const GOOD_YAML = `# what this pod serves
models:
  - name: cnn
    path: mnist_cnn.onnx
    class_names: [${CLASS_NAMES.join(', ')}]
  - name: cnn-plain
    path: mnist_cnn.onnx
    sidecar: mnist_cnn.json
    preprocessing: { scale: 0.00392156862745098, mean: [0.1307], std: [0.3081], fit: resize }
datasets:
  - name: mnist
    path: builtin:mnist
`;

describe('production: model repository loaded at start, readiness and liveness', function () {
  this.timeout(180_000);
  let dir: string;
  let modelRoot: string;
  let dataRoot: string;

  before(async () => {
    dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-repo-'));
    modelRoot = path.join(dir, 'models');
    dataRoot = path.join(dir, 'data');
    await fs.promises.mkdir(modelRoot);
    await fs.promises.mkdir(dataRoot);
    await fs.promises.copyFile(BUNDLED_MODEL, path.join(modelRoot, 'mnist_cnn.onnx'));
    await fs.promises.copyFile(BUNDLED_MODEL.replace(/\.onnx$/, '.json'), path.join(modelRoot, 'mnist_cnn.json'));
  });
  after(async () => {
    await fs.promises.rm(dir, { recursive: true, force: true });
  });

  /** A server on the shared roots with this repository; readiness checked at once, before loading ends. */
  async function start(repository: string): Promise<{ ts: TestServer; readyAtStart: boolean; reasonAtStart: string }> {
    const ts = await startTestServer({ config: { modelRoot, dataRoot, repository } });
    return { ts, readyAtStart: ts.server.health.isServing(), reasonAtStart: ts.server.health.reason() };
  }

  it('parses --repository and INTROSPECT_REPOSITORY', () => {
    const p = parseConfig([], { INTROSPECT_REPOSITORY: '/etc/introspect/repository.yaml' });
    assert.ok(!p.help);
    assert.equal(p.config.repository, '/etc/introspect/repository.yaml');
    const q = parseConfig(['--repository', 'repo.json'], {});
    assert.ok(!q.help);
    assert.equal(q.config.repository, path.resolve('repo.json'));
  });

  it('a restart with the same repository comes back with its models and data sets; readiness waits for them', async () => {
    const file = path.join(dir, 'repository.yaml');
    await fs.promises.writeFile(file, GOOD_YAML);
    const m = mnist('test');
    const images = { shape: [4, 28, 28, 1], dtype: ElementType.ELEMENT_TYPE_UINT8, data: Buffer.from(m.images.subarray(0, 4 * 784)) };
    const logits: string[] = [];
    for (let run = 0; run < 2; run++) {
      const { ts, readyAtStart, reasonAtStart } = await start(file);
      try {
        assert.equal(readyAtStart, false, 'not ready while the repository loads');
        assert.match(reasonAtStart, new RegExp(`^loading the model repository ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        const loaded = await ts.server.repositoryLoaded;
        assert.deepEqual(loaded, { ok: true });
        assert.equal(ts.server.health.isServing(), true);
        assert.equal(await grpcHealth(ts.address), SERVING);
        assert.equal((await get(ts.metricsUrl.replace('/metrics', '/healthz'))).status, 200);
        const models = await ts.client.listModels();
        assert.deepEqual(models.map((x) => x.name).sort(), ['cnn', 'cnn-plain']);
        assert.equal((await ts.client.getDataset('mnist')).name, 'mnist');
        const res = await ts.client.predict({ model: 'cnn', images, top: 1 });
        assert.equal(res.predictions[0]!.top[0]!.className, CLASS_NAMES[m.labels[0]!]);
        const plain = await ts.client.predict({ model: 'cnn-plain', images, top: 1 });
        assert.deepEqual(plain.predictions.map((p) => p.logits), res.predictions.map((p) => p.logits), 'the sidecar and the explicit preprocessing agree');
        logits.push(JSON.stringify(res.predictions.map((p) => p.logits)));
        let count = 0;
        for await (const u of ts.client.evaluate({ model: 'cnn', dataset: 'mnist', limit: 50 })) count = Number(u.result?.count ?? count);
        assert.equal(count, 50);
      } finally {
        await ts.close(); // the roots are outside the test server's own folder and survive
      }
    }
    assert.equal(logits[1], logits[0], 'the restarted server answers the same');
  });

  it('a bad entry leaves the server NOT_SERVING with a reason naming the entry; /livez stays 200', async () => {
    const file = path.join(dir, 'bad.json');
    await fs.promises.writeFile(
      file,
      JSON.stringify({ models: [{ name: 'cnn', path: 'mnist_cnn.onnx' }, { name: 'ghost', path: 'ghost.onnx' }], datasets: [{ name: 'mnist', path: 'builtin:mnist' }] }),
    );
    const { ts } = await start(file);
    try {
      const loaded = await ts.server.repositoryLoaded;
      assert.equal(loaded.ok, false);
      const reason = ts.server.health.reason();
      assert.match(reason, /^the model repository failed to load: repository .*bad\.json: models\[1\] \('ghost'\): .*ghost\.onnx/);
      assert.equal(await grpcHealth(ts.address), NOT_SERVING);
      const healthz = await get(ts.metricsUrl.replace('/metrics', '/healthz'));
      assert.equal(healthz.status, 503);
      assert.match(healthz.body, /models\[1\] \('ghost'\)/);
      const livez = await get(ts.metricsUrl.replace('/metrics', '/livez'));
      assert.deepEqual(livez, { status: 200, body: 'alive\n' });
      // The entry before the bad one loaded; the server answers calls while not ready.
      assert.deepEqual((await ts.client.listModels()).map((x) => x.name), ['cnn']);
    } finally {
      await ts.close();
    }
  });

  it('refuses malformed repositories naming the entry and the key', () => {
    const bad = (text: string, file = 'r.yaml'): string => {
      try {
        parseRepository(text, file);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('expected a refusal');
    };
    assert.match(bad('models:\n  - name: a\n    path: a.onnx\n    preprocess: {}\n'), /^repository r\.yaml: models\[0\] \('a'\): unknown key 'preprocess'/);
    assert.match(bad('models:\n  - path: a.onnx\n'), /^repository r\.yaml: models\[0\]\.name: expected a non-empty string/);
    assert.match(bad('datasets:\n  - { name: d, path: x, format: png }\n'), /datasets\[0\] \('d'\)\.format: 'png' is not one of idx, cifar10, image-folder/);
    assert.match(bad('models: [{ name: a, path: a.onnx }, { name: a, path: b.onnx }]\n'), /the name 'a' is used twice in models/);
    assert.match(bad('{"models": 3}', 'r.json'), /^repository r\.json: models: expected a list/);
    assert.match(bad('{', 'r.json'), /^repository r\.json: not valid JSON/);
    assert.match(bad('models: [\n', 'r.yml'), /^repository r\.yml: not valid YAML/);
    assert.deepEqual(parseRepository('', 'empty.yaml'), { file: 'empty.yaml', models: [], datasets: [] });
  });

  it('a server whose data root or model root does not exist is not ready, and says which', async () => {
    const missing = path.join(dir, 'no-such-data');
    const ts = await startTestServer({ config: { dataRoot: missing } });
    try {
      assert.equal(ts.server.health.isServing(), false);
      assert.equal(ts.server.health.reason(), `the data root ${missing} does not exist (--data-root)`);
      assert.equal(await grpcHealth(ts.address), NOT_SERVING);
      assert.equal((await get(ts.metricsUrl.replace('/metrics', '/livez'))).status, 200);
    } finally {
      await ts.close();
    }
    const noModels = path.join(dir, 'no-such-models');
    const ts2 = await startTestServer({ config: { modelRoot: noModels } });
    try {
      assert.match(ts2.server.health.reason(), new RegExp(`^the model root ${noModels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist \\(--model-root\\)`));
    } finally {
      await ts2.close();
    }
  });
});
