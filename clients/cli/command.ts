/** The shape of a CLI command and the flags every command takes. */
import type { CommandSpec, FlagSpec, ParsedArgs } from './args';
import type { CliContext } from './context';

export interface Command {
  spec: CommandSpec;
  /** Returns the exit code (default 0). */
  run(args: ParsedArgs, ctx: CliContext): Promise<number | void>;
}

export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  server: { type: 'string', arg: 'HOST:PORT', help: 'server address (default $INTROSPECT_SERVER or localhost:50051)' },
  json: { type: 'boolean', help: 'machine-readable output on stdout: one JSON object per line, for every result a stream carries (progress stays on stderr)' },
  quiet: { type: 'boolean', alias: 'q', help: 'no progress on stderr (shown as a bar on a terminal, as plain lines otherwise)' },
  timeout: { type: 'number', arg: 'SECONDS', help: 'deadline for the call' },
  help: { type: 'boolean', alias: 'h', help: 'show help for this command' },
  'token-file': { type: 'string', arg: 'FILE', help: 'bearer token for the server (default $INTROSPECT_TOKEN)' },
  'tls-ca': { type: 'string', arg: 'FILE', help: 'connect with TLS, verifying the server against this PEM CA' },
  'tls-cert': { type: 'string', arg: 'FILE', help: 'client certificate (PEM) for mutual TLS' },
  'tls-key': { type: 'string', arg: 'FILE', help: 'private key (PEM) of --tls-cert' },
};

export function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags[name];
  return v === undefined ? undefined : String(v);
}

export function num(args: ParsedArgs, name: string): number | undefined {
  const v = args.flags[name];
  return typeof v === 'number' ? v : undefined;
}

export function bool(args: ParsedArgs, name: string): boolean | undefined {
  const v = args.flags[name];
  return typeof v === 'boolean' ? v : undefined;
}
