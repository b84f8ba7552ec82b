/**
 * deploy/Dockerfile (CUDA), deploy/Dockerfile.cpu and deploy/Dockerfile.webgpu, linted without a container engine: every COPY
 * source exists in the build context and gets past the .dockerignore, stages referenced exist, the final
 * image runs `node dist/server/main.js` as a non-root user with the ports and environment the server
 * reads, and the CUDA image installs onnxruntime's CUDA 12 provider on a cuDNN runtime base.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../../server/config';
import { dockerignoreFilter, expandArgs, parseDockerfile, stageEnv, type Dockerfile } from './dockerfile-lint';

const REPO = process.cwd();
const DEPLOY = path.join(REPO, 'deploy');
const FILES = { 'Dockerfile': 'cuda', 'Dockerfile.cpu': 'cpu', 'Dockerfile.webgpu': 'webgpu' } as const;

describe('deploy/.dockerignore', function () {
  it('is the same file for every Dockerfile (BuildKit reads <Dockerfile>.dockerignore)', function () {
    const main = fs.readFileSync(path.join(DEPLOY, '.dockerignore'), 'utf8');
    for (const name of Object.keys(FILES)) {
      assert.equal(fs.readFileSync(path.join(DEPLOY, `${name}.dockerignore`), 'utf8'), main, `${name}.dockerignore`);
    }
  });

  it('sends sources and the bundled model, not build output, dependencies, tests or git', function () {
    const sent = dockerignoreFilter(fs.readFileSync(path.join(DEPLOY, '.dockerignore'), 'utf8'));
    for (const p of ['package.json', 'server/main.ts', 'services/errors.ts', 'api/proto-files.ts', 'proto/introspect/v1/models.proto',
      'models/mnist_cnn.onnx', 'scripts/gen-proto.sh', 'deploy/tsconfig.image.json']) {
      assert.ok(sent(p), `${p} is sent`);
    }
    for (const p of ['node_modules/onnxruntime-node/package.json', 'dist/server/main.js', 'dist-e/x.js', '.git/HEAD',
      'test/deploy/manifests.test.ts', 'api/generated/introspect/v1/models.ts',
      'services/graph/generated/onnx/onnx.ts', 'server/debug.log', 'deploy/Dockerfile', 'scripts/train/train.py']) {
      assert.ok(!sent(p), `${p} is not sent`);
    }
  });
});

for (const [name, flavour] of Object.entries(FILES)) {
  describe(`deploy/${name}`, function () {
    let df: Dockerfile;
    before(function () {
      df = parseDockerfile(fs.readFileSync(path.join(DEPLOY, name), 'utf8'));
    });

    it('copies every source folder deploy/tsconfig.image.json compiles (api, server, services, clients)', function () {
      const cfg = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'tsconfig.image.json'), 'utf8')) as { include: string[] };
      const copied = new Set(
        df.stages.flatMap((s) => s.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from === undefined).flatMap((i) => i.args.slice(0, -1))),
      );
      for (const inc of cfg.include) {
        const dir = /^\.\.\/([^/*]+)\/\*\*\/\*\.ts$/.exec(inc)?.[1];
        assert.ok(dir, `include ${inc} is a folder's sources`);
        assert.ok(copied.has(dir) || copied.has(`${dir}/`), `COPY ${dir} ${dir}: the image compiles ${inc}`);
      }
    });

    it('copies only paths that exist in the context and pass the .dockerignore, from stages that exist', function () {
      const sent = dockerignoreFilter(fs.readFileSync(path.join(DEPLOY, `${name}.dockerignore`), 'utf8'));
      const stageNames: string[] = [];
      for (const stage of df.stages) {
        for (const ins of stage.instructions) {
          assert.notEqual(ins.keyword, 'ADD', `line ${ins.line}: use COPY (ADD fetches URLs and unpacks archives)`);
          if (ins.keyword !== 'COPY') continue;
          const sources = ins.args.slice(0, -1);
          assert.ok(sources.length > 0, `line ${ins.line}: COPY needs a source and a destination`);
          const from = ins.flags.from;
          if (from !== undefined) {
            assert.ok(stageNames.includes(from) || from.includes(':') || from.includes('/'),
              `line ${ins.line}: --from=${from} names no earlier stage`);
            continue;
          }
          for (const src of sources) {
            assert.ok(!/[*?[]/.test(src), `line ${ins.line}: no wildcards, so that this check is exact`);
            const abs = path.join(REPO, src);
            assert.ok(fs.existsSync(abs), `line ${ins.line}: COPY source ${src} does not exist`);
            assert.ok(sent(src.replace(/\/$/, '')), `line ${ins.line}: ${src} is excluded by the .dockerignore`);
            if (fs.statSync(abs).isDirectory()) {
              const first = fs.readdirSync(abs).find((f) => sent(`${src.replace(/\/$/, '')}/${f}`));
              assert.ok(first, `line ${ins.line}: nothing in ${src} passes the .dockerignore`);
            }
          }
        }
        if (stage.name) stageNames.push(stage.name);
      }
    });

    it('pins its base images and builds in stages', function () {
      assert.ok(df.stages.length >= 2, 'multi-stage');
      const names = df.stages.map((s) => s.name).filter(Boolean);
      for (const stage of df.stages) {
        const base = expandArgs(stage.base, df.globalArgs);
        if (names.includes(base)) continue;
        assert.match(base, /^[\w./-]+:[\w.-]+$/, `base image ${base} has a tag`);
        assert.ok(!base.endsWith(':latest'), `base image ${base} is not :latest`);
      }
      const build = df.stages.find((s) => s.instructions.some((i) => i.keyword === 'RUN' && /\btsc\b/.test(i.raw)));
      assert.ok(build, 'a stage compiles the TypeScript');
      assert.ok(build.instructions.some((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.raw)), 'npm ci from the lock file');
      assert.notEqual(build, df.stages[df.stages.length - 1], 'the compiler stays out of the final image');
    });

    it('runs the server as a non-root user, with the ports and environment it reads', function () {
      const final = df.stages[df.stages.length - 1];
      const users = final.instructions.filter((i) => i.keyword === 'USER');
      assert.ok(users.length > 0, 'USER in the final stage');
      const user = users[users.length - 1].args[0].split(':')[0];
      assert.ok(!['root', '0'].includes(user), `USER ${user} is not root`);
      assert.match(user, /^[1-9]\d*$/, 'numeric UID, so that runAsNonRoot can verify it');
      assert.equal(Number(user), 10001, 'the UID the Kubernetes manifests run as');

      const entry = final.instructions.filter((i) => i.keyword === 'ENTRYPOINT').pop();
      assert.ok(entry?.exec, 'exec-form ENTRYPOINT (signals reach node)');
      assert.deepEqual(entry.args, ['node', 'dist/server/main.js']);
      assert.ok(fs.existsSync(path.join(REPO, 'server', 'main.ts')), 'server/main.ts compiles to dist/server/main.js');

      const env = stageEnv(final);
      const parsed = parseConfig([], env);
      assert.ok(!parsed.help);
      assert.equal(parsed.config.device, flavour);
      assert.equal(env.HOME, '/tmp', 'HOME on the only writable path');
      const exposed = final.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args);
      assert.ok(exposed.includes(env.INTROSPECT_PORT) && exposed.includes(env.INTROSPECT_METRICS_PORT));
      assert.equal(env.INTROSPECT_PORT, '50051');
      assert.equal(env.INTROSPECT_METRICS_PORT, '9464');
      assert.ok(env.INTROSPECT_MODEL_ROOT.startsWith('/app/models'), 'the bundled model is the default model root');
      const copied = final.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args.slice(0, -1).join(' '));
      assert.ok(copied.some((c) => /proto$/.test(c)), 'proto/ ships: server reflection reads it at run time');
      assert.ok(copied.some((c) => /\bmodels$/.test(c)), 'the bundled model ships');
      assert.ok(!final.instructions.some((i) => i.keyword === 'RUN' && /\b(chmod|chown)\b.*\/app/.test(i.raw)),
        'the app stays root-owned and read-only to the server');
    });

    if (flavour === 'cuda') {
      it('builds on a CUDA 12 + cuDNN runtime image and installs onnxruntime\'s CUDA 12 provider', function () {
        const bases = df.stages.map((s) => expandArgs(s.base, df.globalArgs));
        assert.ok(bases.some((b) => /^nvidia\/cuda:12\.\d+(\.\d+)?-cudnn\d*-runtime-ubuntu\d\d\.\d\d$/.test(b)), bases.join(', '));
        const build = df.stages.find((s) => s.instructions.some((i) => /npm ci\b/.test(i.raw)))!;
        assert.equal(stageEnv(build).ONNXRUNTIME_NODE_INSTALL, 'cuda12');
        const ci = build.instructions.find((i) => /npm ci\b/.test(i.raw))!;
        assert.ok(!/--ignore-scripts|--omit=optional/.test(ci.raw), 'install scripts and the optional tfjs-node-gpu run');
      });
    } else {
      if (flavour === 'webgpu') {
        it('adds the Vulkan loader and asks the NVIDIA container toolkit for the graphics capability (the Vulkan driver)', function () {
          const final = df.stages[df.stages.length - 1];
          assert.ok(final.instructions.some((i) => i.keyword === 'RUN' && /apt-get install[^&]*\blibvulkan1\b/.test(i.raw)), 'libvulkan1 in the final image');
          const env = stageEnv(final);
          assert.ok(env.NVIDIA_DRIVER_CAPABILITIES.split(',').includes('graphics'), env.NVIDIA_DRIVER_CAPABILITIES);
        });
        it('adds the tfjs engine\'s WebGPU backend and Dawn at the versions package.json pins, and nothing else optional', function () {
          const install = df.stages.flatMap((s) => s.instructions).find((i) => /npm install --prefix/.test(i.raw));
          assert.ok(install, 'a side install of the WebGPU packages');
          assert.match(install.raw, /\['webgpu', '@tensorflow\/tfjs-backend-webgpu'\]\.map\(\(n\) => n \+ '@' \+ p\[n\]\)/);
          assert.match(install.raw, /--legacy-peer-deps/, 'no second copy of tfjs-core');
          const pinned = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { optionalDependencies: Record<string, string> }).optionalDependencies;
          for (const n of ['webgpu', '@tensorflow/tfjs-backend-webgpu']) assert.ok(pinned[n], `${n} is an optional dependency`);
          assert.doesNotMatch(install.raw, /tfjs-node-gpu/);
        });
      }
      it('installs no CUDA provider and no tfjs-node-gpu', function () {
        for (const stage of df.stages) {
          const env = stageEnv(stage);
          if (env.ONNXRUNTIME_NODE_INSTALL !== undefined) assert.equal(env.ONNXRUNTIME_NODE_INSTALL, 'skip');
        }
        const runtimeDeps = df.stages.flatMap((s) => s.instructions).filter((i) => /npm ci\b.*--omit=dev/.test(i.raw));
        assert.ok(runtimeDeps.length > 0 && runtimeDeps.every((i) => /--omit=optional/.test(i.raw)));
      });
    }
  });
}

describe('deploy/tsconfig.image.json', function () {
  it('compiles the API, server, services and clients from the project settings into dist/', function () {
    const cfg = JSON.parse(fs.readFileSync(path.join(DEPLOY, 'tsconfig.image.json'), 'utf8')) as {
      extends: string; compilerOptions: { outDir: string }; include: string[];
    };
    assert.equal(path.resolve(DEPLOY, cfg.extends), path.join(REPO, 'tsconfig.json'));
    assert.equal(path.resolve(DEPLOY, cfg.compilerOptions.outDir), path.join(REPO, 'dist'));
    for (const dir of ['api', 'server', 'services', 'clients']) assert.ok(cfg.include.includes(`../${dir}/**/*.ts`), dir);
  });
});
