/**
 * deploy/k8s: each overlay rendered with the kustomize subset in ./kustomize, every object validated
 * against the Kubernetes (and prometheus-operator CRD) schemas, and the properties the service relies on
 * checked on the rendered objects: native gRPC probes on the configured port, a startup probe with room
 * for model loading, headless Service, selectors that select the pods, read-only non-root containers,
 * model and data volumes where the environment says, and a GPU only in the GPU overlay.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isObject, renderKustomization, strategicMerge, type Json, type JsonObject, type K8sObject } from './kustomize';
import { unknownFieldErrors, validateWithSchemas } from './k8s-schemas';
import { parseConfig, type ServerConfig } from '../../server/config';

const REPO = process.cwd();
const K8S = path.join(REPO, 'deploy', 'k8s');
const OVERLAYS = ['cpu', 'gpu', 'gpu-secure', 'webgpu'] as const;
const SERVER_ENV = [
  'INTROSPECT_PORT', 'INTROSPECT_METRICS_PORT', 'INTROSPECT_MODEL_ROOT', 'INTROSPECT_DATA_ROOT', 'INTROSPECT_DEVICE',
  'INTROSPECT_WORKERS', 'INTROSPECT_THREADS', 'INTROSPECT_CACHE_BYTES', 'INTROSPECT_LOG_LEVEL',
];

function only(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0];
}

function obj(v: Json | undefined, what: string): JsonObject {
  assert.ok(isObject(v), `${what} is missing or not a map`);
  return v;
}

function list(v: Json | undefined, what: string): JsonObject[] {
  assert.ok(Array.isArray(v) && v.every(isObject), `${what} is missing or not a list of maps`);
  return v as JsonObject[];
}

function selects(selector: JsonObject, labels: JsonObject): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

describe('deploy/k8s kustomize subset', function () {
  it('merges pod-spec lists by their merge keys and replaces other lists', function () {
    const base: Json = {
      spec: {
        containers: [
          { name: 'a', image: 'x', env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 1, name: 'p' }] },
          { name: 'b', image: 'y', args: ['--one'] },
        ],
        tolerations: [{ key: 't1' }],
      },
    };
    const patch: Json = {
      spec: {
        containers: [{ name: 'b', args: ['--two'], env: [{ name: 'B', value: '2' }] }, { name: 'c', image: 'z' }],
        tolerations: [{ key: 't2' }],
      },
    };
    assert.deepEqual(strategicMerge(base, patch), {
      spec: {
        containers: [
          { name: 'a', image: 'x', env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 1, name: 'p' }] },
          { name: 'b', image: 'y', args: ['--two'], env: [{ name: 'B', value: '2' }] },
          { name: 'c', image: 'z' },
        ],
        tolerations: [{ key: 't2' }],
      },
    });
    assert.deepEqual(strategicMerge({ a: { b: 1, c: 2 } }, { a: { b: null } }), { a: { c: 2 } });
  });

  it('renders a base and an overlay, and refuses what it does not implement', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kustomize-subset-'));
    try {
      fs.mkdirSync(path.join(dir, 'base'));
      fs.mkdirSync(path.join(dir, 'over'));
      fs.writeFileSync(path.join(dir, 'base', 'kustomization.yaml'), 'resources: [app.yaml]\ncommonLabels: {app: demo}\n');
      fs.writeFileSync(path.join(dir, 'base', 'app.yaml'), [
        'apiVersion: apps/v1', 'kind: Deployment', 'metadata: {name: web}',
        'spec:', '  template:', '    spec:', '      containers: [{name: c, image: "web:1"}]',
        '---', 'apiVersion: v1', 'kind: Service', 'metadata: {name: web}', 'spec: {ports: [{port: 80}]}', '',
      ].join('\n'));
      fs.writeFileSync(path.join(dir, 'over', 'kustomization.yaml'), [
        'namespace: prod', 'resources: [../base]', 'images: [{name: web, newName: reg/web, newTag: "2"}]',
        'patches:', '  - patch: |-', '      apiVersion: v1', '      kind: Service', '      metadata: {name: web}',
        '      spec: {clusterIP: None}', '',
      ].join('\n'));
      const out = renderKustomization(path.join(dir, 'over'));
      assert.deepEqual(out, [
        {
          apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { app: 'demo' }, namespace: 'prod' },
          spec: {
            template: { metadata: { labels: { app: 'demo' } }, spec: { containers: [{ name: 'c', image: 'reg/web:2' }] } },
            selector: { matchLabels: { app: 'demo' } },
          },
        },
        {
          apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', labels: { app: 'demo' }, namespace: 'prod' },
          spec: { ports: [{ port: 80 }], selector: { app: 'demo' }, clusterIP: 'None' },
        },
      ]);
      fs.appendFileSync(path.join(dir, 'over', 'kustomization.yaml'), 'namePrefix: x-\n');
      assert.throws(() => renderKustomization(path.join(dir, 'over')), /namePrefix.*not supported/);
      fs.writeFileSync(path.join(dir, 'over', 'kustomization.yaml'),
        'resources: [../base]\npatches: [{patch: "{apiVersion: v1, kind: Service, metadata: {name: nope}}"}]\n');
      assert.throws(() => renderKustomization(path.join(dir, 'over')), /Service\/nope matches 0 objects/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

for (const overlay of OVERLAYS) {
  const gpu = overlay !== 'cpu';
  /** The device the overlay's pods run on, and the image flavour they use. */
  const device = overlay === 'webgpu' ? 'webgpu' : gpu ? 'cuda' : 'cpu';
  const secure = overlay.endsWith('-secure');
  describe(`deploy/k8s/overlays/${overlay}`, function () {
    let objects: K8sObject[];
    let deployment: K8sObject;
    let podSpec: JsonObject;
    let container: JsonObject;
    let env: Record<string, string>;
    let config: ServerConfig;

    before(function () {
      objects = renderKustomization(path.join(K8S, 'overlays', overlay));
      deployment = only(objects, 'Deployment');
      podSpec = obj(obj(obj(deployment.spec, 'spec').template, 'template').spec, 'pod spec');
      const containers = list(podSpec.containers, 'containers');
      assert.equal(containers.length, 1);
      container = containers[0];
      const envFrom = list(container.envFrom, 'envFrom');
      const cmName = obj(envFrom[0].configMapRef, 'configMapRef').name;
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === cmName);
      assert.ok(cm, `ConfigMap ${String(cmName)} referenced by envFrom is rendered`);
      env = obj(cm.data, 'ConfigMap data') as Record<string, string>;
      // the server's own parser: the ConfigMap must be a configuration it accepts
      const parsed = parseConfig([], env);
      assert.ok(!parsed.help);
      config = parsed.config;
    });

    it('renders the expected objects, all in one namespace and labelled', function () {
      const kinds = objects.map((o) => o.kind).sort();
      assert.deepEqual(kinds, ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'PersistentVolumeClaim',
        'PersistentVolumeClaim', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'ServiceMonitor']);
      for (const o of objects) {
        assert.equal(o.metadata.namespace, 'cnn-introspect', `${o.kind}/${o.metadata.name} namespace`);
        assert.equal(obj(o.metadata.labels, 'labels')['app.kubernetes.io/name'], 'cnn-introspect');
        assert.equal(obj(o.metadata.labels, 'labels')['app.kubernetes.io/variant'], overlay);
      }
    });

    it('validates against the Kubernetes and ServiceMonitor CRD schemas', async function () {
      this.timeout(60_000);
      assert.deepEqual(await validateWithSchemas(objects), []);
    });

    it('has no unknown or misplaced fields (type check against the schema interfaces)', function () {
      this.timeout(120_000);
      assert.deepEqual(unknownFieldErrors(objects, REPO), []);
    });

    it('configures the server through every INTROSPECT_* variable, consistently with the pod', function () {
      for (const name of SERVER_ENV) assert.ok(typeof env[name] === 'string' && env[name] !== '', `${name} is set`);
      const ports = list(container.ports, 'ports');
      assert.equal(ports.find((p) => p.name === 'grpc')?.containerPort, config.port);
      assert.equal(ports.find((p) => p.name === 'metrics')?.containerPort, config.metricsPort);
      assert.equal(config.device, device);
      assert.ok(config.workers !== undefined && config.intraOpThreads !== undefined);
      assert.ok(config.cacheBytes >= 1024 ** 3);
      const memoryLimit = String(obj(obj(container.resources, 'resources').limits, 'limits').memory);
      assert.match(memoryLimit, /^\d+Gi$/);
      assert.ok(config.cacheBytes < parseInt(memoryLimit, 10) * 1024 ** 3, 'the model cache fits in the memory limit');
      assert.match(String(container.image), new RegExp(`^registry\\.example\\.com/cnn-introspect:[\\w.-]+-${device}$`));
    });

    it(secure ? 'probes /healthz on the plain-HTTP metrics port (kubelet gRPC probes cannot speak TLS), with a generous startup probe'
      : 'probes with native gRPC health checks on the configured port, with a generous startup probe', function () {
      const port = config.port;
      const metricsPort = list(container.ports, 'ports').find((p) => p.name === 'metrics')?.containerPort;
      assert.equal(metricsPort, config.metricsPort);
      for (const name of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
        const probe = obj(container[name], name);
        const kinds = Object.keys(probe).filter((k) => ['grpc', 'httpGet', 'tcpSocket', 'exec'].includes(k));
        if (secure) {
          assert.deepEqual(kinds, ['httpGet'], name);
          const get = obj(probe.httpGet, `${name}.httpGet`);
          assert.equal(get.path, '/healthz', `${name} path`);
          assert.equal(get.port, 'metrics', `${name} port`);
        } else {
          assert.deepEqual(kinds, ['grpc'], name);
          assert.equal(obj(probe.grpc, `${name}.grpc`).port, port, `${name} port`);
        }
      }
      const startup = obj(container.startupProbe, 'startupProbe');
      const budget = Number(startup.failureThreshold) * Number(startup.periodSeconds);
      assert.ok(budget >= 180, `startup probe allows ${budget} s for model loading`);
      assert.ok(Number(podSpec.terminationGracePeriodSeconds) * 1000 > config.gracePeriodMs,
        'the pod outlives the server drain period');
    });

    it('selects its pods: Service (headless), PDB, HPA target and ServiceMonitor fit together', function () {
      const spec = obj(deployment.spec, 'deployment spec');
      const podLabels = obj(obj(obj(spec.template, 'template').metadata, 'template metadata').labels, 'pod labels');
      assert.ok(selects(obj(obj(spec.selector, 'selector').matchLabels, 'matchLabels'), podLabels));
      assert.equal(spec.replicas, undefined, 'the HPA owns the replica count');

      const service = only(objects, 'Service');
      const sspec = obj(service.spec, 'service spec');
      assert.equal(sspec.clusterIP, 'None', 'headless, for client-side balancing');
      assert.ok(selects(obj(sspec.selector, 'service selector'), podLabels));
      const sports = list(sspec.ports, 'service ports');
      const containerPortNames = list(container.ports, 'ports').map((p) => p.name);
      for (const p of sports) assert.ok(containerPortNames.includes(p.targetPort as string), `targetPort ${String(p.targetPort)}`);

      const pdb = obj(only(objects, 'PodDisruptionBudget').spec, 'pdb spec');
      assert.ok(selects(obj(obj(pdb.selector, 'pdb selector').matchLabels, 'pdb matchLabels'), podLabels));

      const hpa = obj(only(objects, 'HorizontalPodAutoscaler').spec, 'hpa spec');
      assert.deepEqual(hpa.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
      assert.ok(Number(hpa.minReplicas) >= 1 && Number(hpa.maxReplicas) > Number(hpa.minReplicas));

      const sm = obj(only(objects, 'ServiceMonitor').spec, 'servicemonitor spec');
      assert.ok(selects(obj(obj(sm.selector, 'sm selector').matchLabels, 'sm matchLabels'), obj(service.metadata.labels, 'labels')));
      const endpoints = list(sm.endpoints, 'endpoints');
      assert.ok(endpoints.every((e) => sports.some((p) => p.name === e.port)), 'ServiceMonitor scrapes a named Service port');
      assert.equal(endpoints[0].path, '/metrics');
    });

    it('runs non-root with a read-only root file system, writable /tmp, read-only model and data volumes', function () {
      const psc = obj(podSpec.securityContext, 'pod securityContext');
      assert.equal(psc.runAsNonRoot, true);
      assert.ok(Number(psc.runAsUser) > 0);
      const csc = obj(container.securityContext, 'container securityContext');
      assert.equal(csc.readOnlyRootFilesystem, true);
      assert.equal(csc.allowPrivilegeEscalation, false);
      assert.deepEqual(obj(csc.capabilities, 'capabilities').drop, ['ALL']);
      assert.equal(podSpec.automountServiceAccountToken, false);

      const volumes = new Map(list(podSpec.volumes, 'volumes').map((v) => [v.name as string, v]));
      const mounts = new Map(list(container.volumeMounts, 'volumeMounts').map((m) => [m.mountPath as string, m]));
      for (const m of mounts.values()) assert.ok(volumes.has(m.name as string), `volume ${String(m.name)} defined`);
      assert.ok(volumes.get(mounts.get('/tmp')?.name as string)?.emptyDir, '/tmp is an emptyDir');
      for (const root of [config.modelRoot, config.dataRoot]) {
        const m = mounts.get(root);
        assert.ok(m, `a volume is mounted at ${root}`);
        assert.equal(m.readOnly, true, `${root} is mounted read-only`);
        const claim = obj(volumes.get(m.name as string)?.persistentVolumeClaim, `${root} PVC`).claimName;
        assert.ok(objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === claim), `PVC ${String(claim)} rendered`);
      }
    });

    it(gpu ? 'requests one NVIDIA GPU and lands on GPU nodes' : 'requests no GPU', function () {
      const resources = obj(container.resources, 'resources');
      const gpuOf = (r: string): Json | undefined => obj(resources[r], `resources.${r}`)['nvidia.com/gpu'];
      if (gpu) {
        assert.equal(Number(gpuOf('requests')), 1);
        assert.equal(Number(gpuOf('limits')), 1);
        const tolerations = list(podSpec.tolerations, 'tolerations');
        assert.ok(tolerations.some((t) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists'));
        assert.ok(Object.keys(obj(podSpec.nodeSelector, 'nodeSelector')).some((k) => k.startsWith('nvidia.com/')));
      } else {
        assert.ok(!JSON.stringify(objects).includes('nvidia.com/gpu'));
      }
    });

    if (device === 'webgpu') {
      it('asks the NVIDIA container toolkit for the graphics capability, which mounts the Vulkan driver', function () {
        const env = list(container.env, 'env');
        const caps = String(env.find((e) => e.name === 'NVIDIA_DRIVER_CAPABILITIES')?.value ?? '');
        assert.ok(caps.split(',').includes('graphics'), caps);
      });
    }

    it(secure ? 'reads its bearer tokens and TLS key pair from Secrets mounted read-only where the configuration points'
      : 'serves without authentication or TLS (the -secure overlay adds them)', function () {
      if (!secure) {
        assert.equal(config.authTokenFile, undefined);
        assert.equal(config.tlsCert, undefined);
        return;
      }
      const volumes = new Map(list(podSpec.volumes, 'volumes').map((v) => [v.name as string, v]));
      const mounts = list(container.volumeMounts, 'volumeMounts');
      const fromSecret = (file: string | undefined, secretName: string, key: string): void => {
        assert.ok(file, `a file is configured for ${secretName}/${key}`);
        const m = mounts.find((x) => file.startsWith(`${String(x.mountPath)}/`));
        assert.ok(m, `${file} lies under a volume mount`);
        assert.equal(m.readOnly, true, `${file} is mounted read-only`);
        const secret = obj(volumes.get(m.name as string)?.secret, `volume ${String(m.name)} is a Secret`);
        assert.equal(secret.secretName, secretName);
        const item = list(secret.items, 'items').find((i) => i.path === file.slice(String(m.mountPath).length + 1));
        assert.ok(item, `${file} is projected from the Secret`);
        assert.equal(item.key, key);
        assert.equal(Number(secret.defaultMode) & 0o007, 0, 'not readable by others');
        assert.ok((Number(secret.defaultMode) & 0o040) !== 0, 'readable by the pod\'s fsGroup');
      };
      fromSecret(config.authTokenFile, 'cnn-introspect-auth', 'tokens');
      fromSecret(config.tlsCert, 'cnn-introspect-tls', 'tls.crt');
      fromSecret(config.tlsKey, 'cnn-introspect-tls', 'tls.key');
    });
  });
}
