/**
 * Layers point one way. Every import in the sources (static, `export … from`, `import()`, `require()`)
 * is read and resolved to a repository path, and checked against the rules:
 *
 *   api/       the wire contract (generated code, proto files, method table) and the maths both ends
 *              compute from it (curves): imports only api/ and packages.
 *   services/  the domain and the application jobs (services/jobs): never server/, clients/, bench/,
 *              scripts/, nor the generated wire code (api/generated/).
 *   server/    gRPC process and thin handlers (decode → job → encode): never clients/, bench/, scripts/.
 *   clients/   RPC clients and CLI: never server/, bench/, scripts/, nor what runs analyses
 *              (services/analysis, services/jobs, services/engines, services/models).
 *
 *   api ← services ← server        api ← clients
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..', '..');

interface Rule {
  /** The layer's folder (repository-relative, trailing slash). */
  layer: string;
  /** Folders (or files) it may not import from. */
  never: string[];
  /** When set: the only repository folders it may import from. */
  only?: string[];
}

export const RULES: Rule[] = [
  { layer: 'api/', never: [], only: ['api/'] },
  { layer: 'services/', never: ['server/', 'clients/', 'bench/', 'scripts/', 'test/', 'api/generated/'] },
  { layer: 'server/', never: ['clients/', 'bench/', 'scripts/', 'test/'] },
  {
    layer: 'clients/',
    never: ['server/', 'bench/', 'scripts/', 'test/', 'services/analysis/', 'services/jobs/', 'services/engines/', 'services/models/'],
  },
];

/** Module specifiers a TypeScript source imports (comments are skipped). */
export function importSpecifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

/** Broken rules of one file (`file` repository-relative), as readable lines. */
export function violations(file: string, source: string, rules: Rule[] = RULES): string[] {
  const rule = rules.find((r) => file.startsWith(r.layer));
  if (!rule) return [];
  const out: string[] = [];
  for (const spec of importSpecifiers(source)) {
    if (!spec.startsWith('.')) continue; // a package or node builtin
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
    if (target.startsWith('..')) {
      out.push(`${file} imports ${spec}, outside the repository`);
      continue;
    }
    const under = (prefix: string): boolean => target === prefix.replace(/\/$/, '') || target.startsWith(prefix);
    const banned = rule.never.find(under);
    if (banned) out.push(`${file} imports ${spec} (${rule.layer} never imports ${banned})`);
    else if (rule.only && !rule.only.some(under)) out.push(`${file} imports ${spec} (${rule.layer} imports only ${rule.only.join(', ')})`);
  }
  return out;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
      const p = path.posix.join(rel, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

describe('layering: imports point one way', function () {
  it('finds the layers and reads their imports', function () {
    for (const r of RULES) {
      const files = sources(r.layer.replace(/\/$/, ''));
      assert.ok(files.length > 0, `no sources under ${r.layer}`);
    }
    // the reader sees the import forms the sources use
    const specs = importSpecifiers([
      "import type { A } from '../a';",
      "import {\n  B,\n  type C,\n} from './b';",
      "export { D } from '../../d';",
      "import './side-effect';",
      "const e = require('./e');",
      "const f = await import('../f');",
      "// import { G } from '../g';",
      "/* import { H } from '../h'; */",
    ].join('\n'));
    assert.deepEqual(specs.sort(), ['../../d', '../a', '../f', './b', './e', './side-effect']);
  });

  it('reports an import that breaks a rule (so the check below can fail)', function () {
    assert.equal(violations('server/handlers/x.ts', "import { A } from '../../clients/client';").length, 1);
    assert.equal(violations('clients/sharded.ts', "import { s } from '../services/analysis/similarity';").length, 1);
    assert.equal(violations('api/curves.ts', "import { e } from '../services/errors';").length, 1);
    assert.equal(violations('services/jobs/x.ts', "import type { T } from '../../api/generated/introspect/v1/analysis';").length, 1);
    assert.deepEqual(violations('services/analysis/similarity.ts', "import { buildCurves } from '../../api/curves';"), []);
    assert.deepEqual(violations('clients/sharded.ts', "import { buildCurves } from '../api/curves';"), []);
    assert.deepEqual(violations('server/server.ts', "import { API_SERVICES } from '../api/proto-files';"), []);
  });

  for (const r of RULES) {
    it(`${r.layer} keeps its rule`, function () {
      const found = sources(r.layer.replace(/\/$/, '')).flatMap((f) => violations(f, fs.readFileSync(path.join(REPO, f), 'utf8')));
      assert.deepEqual(found, []);
    });
  }
});
