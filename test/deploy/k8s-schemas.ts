/**
 * Validation of rendered Kubernetes objects against the published schemas, two ways:
 *  - `validateWithSchemas`: the kubernetes-models classes' `.validate()` (JSON schema compiled from the
 *    Kubernetes OpenAPI document, and the prometheus-operator CRD schema for the ServiceMonitor): types,
 *    required fields, enums, formats and patterns. Those schemas accept unknown fields.
 *  - `unknownFieldErrors`: TypeScript's excess-property check of each object against the same packages'
 *    interfaces, which catches a misspelt or misplaced field (`livenesProbe`, `grpc` under `spec`).
 * The model packages are ES modules only; this project compiles to CommonJS, so they are loaded with a
 * real dynamic import that TypeScript does not rewrite into require().
 */
import * as path from 'node:path';
import * as ts from 'typescript';
import type { K8sObject } from './kustomize';

interface KindInfo {
  module: string;
  /** module path as TypeScript (node10 resolution, no `exports` map) finds the declaration file */
  typeModule: string;
  className: string;
}

const KINDS: Record<string, KindInfo> = {};
function kind(apiVersion: string, k: string, module: string): void {
  KINDS[`${apiVersion}/${k}`] = { module, typeModule: `${module}/${k}`, className: k };
}
kind('v1', 'ConfigMap', 'kubernetes-models/v1');
kind('v1', 'Service', 'kubernetes-models/v1');
kind('v1', 'ServiceAccount', 'kubernetes-models/v1');
kind('v1', 'PersistentVolumeClaim', 'kubernetes-models/v1');
kind('v1', 'Namespace', 'kubernetes-models/v1');
kind('apps/v1', 'Deployment', 'kubernetes-models/apps/v1');
kind('autoscaling/v2', 'HorizontalPodAutoscaler', 'kubernetes-models/autoscaling/v2');
kind('policy/v1', 'PodDisruptionBudget', 'kubernetes-models/policy/v1');
kind('monitoring.coreos.com/v1', 'ServiceMonitor', '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1');

const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<Record<string, unknown>>;

function info(obj: K8sObject): KindInfo {
  const i = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!i) throw new Error(`no schema known for ${obj.apiVersion} ${obj.kind} (${obj.metadata.name})`);
  return i;
}

/** Validates each object with its kubernetes-models class; returns "Kind/name: message" per invalid one. */
export async function validateWithSchemas(objects: K8sObject[]): Promise<string[]> {
  const errors: string[] = [];
  for (const obj of objects) {
    const i = info(obj);
    const mod = await importEsm(i.module);
    const Model = mod[i.className] as new (data: unknown) => { validate(): void };
    try {
      new Model(obj).validate();
    } catch (err) {
      errors.push(`${obj.kind}/${obj.metadata.name}: ${(err as Error).message}`);
    }
  }
  return errors;
}

/** Type-checks each object literal against its interface (I<Kind>); returns the compiler's complaints. */
export function unknownFieldErrors(objects: K8sObject[], repoRoot: string): string[] {
  const lines: string[] = [];
  objects.forEach((obj, n) => {
    const i = info(obj);
    lines.push(`import type { I${i.className} as T${n} } from '${i.typeModule}';`);
    lines.push(`// ${obj.kind}/${obj.metadata.name}`);
    lines.push(`export const o${n}: T${n} = ${JSON.stringify(obj, null, 1)};`);
  });
  const fileName = path.join(repoRoot, '__deploy_manifest_check__.ts');
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, version, onError, create) =>
    name === fileName ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, onError, create);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  const sf = program.getSourceFile(fileName)!;
  return ts.getPreEmitDiagnostics(program, sf).map((d) => {
    const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (d.start === undefined) return text;
    const { line } = sf.getLineAndCharacterOfPosition(d.start);
    const owner = source.split('\n').slice(0, line + 1).reverse().find((l) => l.startsWith('// '));
    return `${owner?.slice(3) ?? '?'} (line ${line + 1}): ${text}`;
  });
}
