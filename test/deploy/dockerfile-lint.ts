/**
 * A small Dockerfile reader and .dockerignore matcher for the deploy tests (there is no container engine
 * on the build machines): instructions with their flags and arguments, stages, and which build-context
 * paths an ignore file lets through.
 */

export interface Instruction {
  keyword: string; // upper case
  flags: Record<string, string>; // --from=build → { from: 'build' }
  args: string[]; // exec form (JSON array) or whitespace-split shell form
  raw: string; // the arguments as written, continuations joined
  exec: boolean;
  line: number;
}

export interface Stage {
  base: string;
  name?: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  /** ARGs before the first FROM, with their defaults */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** Splits a Dockerfile into instructions: comments dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    while (line.endsWith('\\')) {
      line = line.slice(0, -1);
      i++;
      if (i >= lines.length) throw new Error(`line ${start + 1}: continuation at end of file`);
      const next = lines[i].trim();
      if (next.startsWith('#')) continue;
      line += ' ' + next;
    }
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    let rest = m[2];
    const flags: Record<string, string> = {};
    let fm: RegExpExecArray | null;
    while ((fm = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest))) {
      flags[fm[1]] = fm[2] ?? 'true';
      rest = rest.slice(fm[0].length);
    }
    let args: string[];
    let exec = false;
    if (rest.startsWith('[')) {
      const parsed = JSON.parse(rest) as unknown;
      if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string')) {
        throw new Error(`line ${start + 1}: exec form must be a JSON array of strings`);
      }
      args = parsed;
      exec = true;
    } else {
      args = rest.split(/\s+/).filter((s) => s !== '');
    }
    instructions.push({ keyword: m[1].toUpperCase(), flags, args, raw: rest, exec, line: start + 1 });
  }

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [base, as, name] = ins.args;
      if (as !== undefined && (as.toUpperCase() !== 'AS' || !name)) throw new Error(`line ${ins.line}: FROM image [AS name]`);
      stages.push({ base, name, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [k, ...v] = ins.args[0].split('=');
      globalArgs[k] = v.join('=');
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  if (stages.length === 0) throw new Error('no FROM');
  return { globalArgs, stages };
}

/** Expands ${NAME} and $NAME from the given ARG defaults. */
export function expandArgs(value: string, args: Record<string, string>): string {
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a?: string, b?: string) => args[(a ?? b)!] ?? all);
}

/** ENV settings of a stage: both `ENV K=V K2=V2` and the old `ENV K V` form. */
export function stageEnv(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of stage.instructions) {
    if (ins.keyword !== 'ENV') continue;
    if (ins.args.length >= 1 && !ins.args[0].includes('=')) {
      env[ins.args[0]] = ins.args.slice(1).join(' ');
    } else {
      for (const a of ins.args) {
        const [k, ...v] = a.split('=');
        env[k] = v.join('=').replace(/^"(.*)"$/, '$1');
      }
    }
  }
  return env;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * The .dockerignore rules as Docker applies them: patterns in order, the last one that matches a path or
 * one of its parent folders decides; `!` re-includes. Returns whether a context path is sent.
 */
export function dockerignoreFilter(text: string): (relPath: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, re: globToRegExp(pattern) };
    });
  return (relPath: string): boolean => {
    const parts = relPath.replace(/^\/+/, '').split('/');
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let included = true;
    for (const rule of rules) {
      if (prefixes.some((p) => rule.re.test(p))) included = rule.negate;
    }
    return included;
  };
}
