/**
 * A small argv parser: `--flag value`, `--flag=value`, boolean `--flag` / `--no-flag`, short
 * aliases, repeated flags, and positionals. `--` ends the options.
 */
export type FlagType = 'string' | 'number' | 'boolean';

export interface FlagSpec {
  type: FlagType;
  help: string;
  alias?: string;
  /** Shown in help: `--top N`. */
  arg?: string;
  /** May be given several times (values collected in order). */
  multiple?: boolean;
}

export interface CommandSpec {
  /** "models load" */
  name: string;
  summary: string;
  /** "<name> <path>" */
  usage?: string;
  flags: Record<string, FlagSpec>;
  /** Extra text after the flag list. */
  details?: string;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagValue = string | number | boolean | string[] | number[];

export interface ParsedArgs {
  flags: Record<string, FlagValue | undefined>;
  positionals: string[];
}

export function parseArgs(argv: readonly string[], flags: Record<string, FlagSpec>): ParsedArgs {
  const out: ParsedArgs = { flags: {}, positionals: [] };
  const byAlias = new Map<string, string>();
  for (const [name, spec] of Object.entries(flags)) if (spec.alias) byAlias.set(spec.alias, name);
  const set = (name: string, spec: FlagSpec, raw: string | boolean): void => {
    let value: string | number | boolean;
    if (spec.type === 'boolean') value = raw === true || raw === 'true' || raw === '1';
    else if (spec.type === 'number') {
      const n = Number(raw);
      if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} needs a number, got '${String(raw)}'`);
      value = n;
    } else value = String(raw);
    if (spec.multiple) {
      const prev = (out.flags[name] as Array<string | number> | undefined) ?? [];
      out.flags[name] = [...prev, value as string | number] as string[] | number[];
    } else out.flags[name] = value;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-' || !a.startsWith('-') || /^-\d/.test(a)) {
      out.positionals.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    } else {
      const alias = byAlias.get(a.slice(1));
      if (!alias) throw new UsageError(`unknown option '${a}'`);
      name = alias;
    }
    const spec = flags[name];
    if (!spec && name.startsWith('no-') && flags[name.slice(3)]?.type === 'boolean' && inline === undefined) {
      out.flags[name.slice(3)] = false;
      continue;
    }
    if (!spec) throw new UsageError(`unknown option '--${name}'`);
    if (spec.type === 'boolean') {
      set(name, spec, inline ?? true);
      continue;
    }
    if (inline === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value${spec.arg ? ` (${spec.arg})` : ''}`);
      inline = next;
      i++;
    }
    set(name, spec, inline);
  }
  return out;
}

export function helpText(cmd: CommandSpec, program = 'introspect'): string {
  const lines = [`Usage: ${program} ${cmd.name}${cmd.usage ? ' ' + cmd.usage : ''} [options]`, '', cmd.summary, ''];
  const entries = Object.entries(cmd.flags);
  if (entries.length > 0) {
    lines.push('Options:');
    for (const [name, spec] of entries) {
      const left = `  ${spec.alias ? `-${spec.alias}, ` : ''}--${name}${spec.type === 'boolean' ? '' : ` ${spec.arg ?? 'VALUE'}`}`;
      lines.push(`${left.padEnd(30)}${spec.help}`);
    }
  }
  if (cmd.details) lines.push('', cmd.details);
  return lines.join('\n') + '\n';
}

/** Comma-separated list flag ("a,b,c") → strings; repeated flags are joined first. */
export function listFlag(v: FlagValue | undefined): string[] {
  if (v === undefined) return [];
  const parts = Array.isArray(v) ? v.map(String) : [String(v)];
  return parts.flatMap((p) => p.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

export function numberListFlag(v: FlagValue | undefined, name: string): number[] {
  return listFlag(v).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n)) throw new UsageError(`--${name}: '${s}' is not a number`);
    return n;
  });
}
