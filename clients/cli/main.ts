#!/usr/bin/env node
/**
 * `introspect`: the command-line client of the cnn-introspect server.
 *
 *   introspect [--server HOST:PORT] [--json] <command> [args] [options]
 *
 * Exit codes: 0 ok (also when stdout is closed early, as by `| head`), 1 the server answered an error
 * (code and message on stderr), 2 usage error, 3 the server could not be reached (the address tried
 * and what to try on stderr).
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { clientSecurity } from '../client';
import { UsageError, helpText, parseArgs, type ParsedArgs } from './args';
import { GLOBAL_FLAGS, type Command } from './command';
import { analysisCommands } from './commands/analysis';
import { callCommand } from './commands/call';
import { datasetCommands } from './commands/datasets';
import { examplesCommand } from './commands/examples';
import { modelCommands } from './commands/models';
import { neuronsCommand } from './commands/neurons';
import { probesCommand, pruneCommand } from './commands/prune';
import { reportCommand } from './commands/report';
import { sanityCommand, similarityCommand } from './commands/similarity';
import { CliContext, readAllStdin, type CliIo } from './context';

export const COMMANDS: Command[] = [
  callCommand,
  ...modelCommands,
  ...datasetCommands,
  ...analysisCommands,
  neuronsCommand,
  similarityCommand,
  examplesCommand,
  sanityCommand,
  pruneCommand,
  probesCommand,
  reportCommand,
];

const DEFAULT_SERVER = 'localhost:50051';

/** The server address and where it came from (named when it cannot be reached). */
function serverAddress(flags: ParsedArgs['flags'], env: NodeJS.ProcessEnv): { address: string; from: string } {
  if (flags.server !== undefined) return { address: String(flags.server), from: '--server' };
  if (env.INTROSPECT_SERVER) return { address: env.INTROSPECT_SERVER, from: '$INTROSPECT_SERVER' };
  return { address: DEFAULT_SERVER, from: 'the default' };
}

/** What to tell a user whose server did not answer. */
export function unreachableHint(address: string, from: string): string {
  return [
    `cannot reach a cnn-introspect server at ${address} (${from}).`,
    `  Is the server running? Start one with 'npm start' in the repository (it listens on ${DEFAULT_SERVER} unless configured otherwise),`,
    `  or point the CLI at yours with --server HOST:PORT or INTROSPECT_SERVER=HOST:PORT.`,
  ].join('\n');
}

function overview(): string {
  const lines = [
    'Usage: introspect [--server HOST:PORT] [--json] <command> [args] [options]',
    '',
    'Talks to a cnn-introspect server over gRPC.',
    '',
    'Commands:',
  ];
  for (const c of COMMANDS) lines.push(`  ${`${c.spec.name}${c.spec.usage ? ' ' + c.spec.usage : ''}`.padEnd(44)}${c.spec.summary.split('. ')[0]!.replace(/\.$/, '')}`);
  lines.push('', 'Global options:');
  for (const [name, f] of Object.entries(GLOBAL_FLAGS)) {
    lines.push(`  ${`--${name}${f.type === 'boolean' ? '' : ' ' + (f.arg ?? 'VALUE')}`.padEnd(44)}${f.help}`);
  }
  lines.push('', "Run 'introspect <command> --help' for a command's options.");
  return lines.join('\n') + '\n';
}

/** The command named by the leading words of argv (longest match), and the rest of argv. */
function findCommand(argv: string[]): { command?: Command; rest: string[]; group?: string } {
  const words: string[] = [];
  const rest: string[] = [];
  for (const a of argv) {
    if (rest.length === 0 && !a.startsWith('-') && words.length < 2) words.push(a);
    else rest.push(a);
  }
  for (let n = words.length; n > 0; n--) {
    const name = words.slice(0, n).join(' ');
    const command = COMMANDS.find((c) => c.spec.name === name);
    if (command) return { command, rest: [...words.slice(n), ...rest] };
  }
  const group = words[0] && COMMANDS.some((c) => c.spec.name.startsWith(words[0] + ' ')) ? words[0] : undefined;
  return { rest: argv, group };
}

/** TLS and token options from --tls-ca/--tls-cert/--tls-key, --token-file and $INTROSPECT_TOKEN. */
function cliSecurity(flags: ParsedArgs['flags'], env: NodeJS.ProcessEnv): ReturnType<typeof clientSecurity> {
  const file = (name: string): string | undefined => (flags[name] === undefined ? undefined : String(flags[name]));
  try {
    return clientSecurity({ tlsCa: file('tls-ca'), tlsCert: file('tls-cert'), tlsKey: file('tls-key'), tokenFile: file('token-file'), token: env.INTROSPECT_TOKEN });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function isServiceError(err: unknown): err is ServiceError {
  return typeof err === 'object' && err !== null && typeof (err as ServiceError).code === 'number' && 'details' in err;
}

export async function runCli(argv: string[], io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // Global flags may come before the command.
  const globalsFirst: string[] = [];
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const a = argv[i]!;
    globalsFirst.push(a);
    const name = a.replace(/^--?/, '').split('=')[0]!;
    const spec = GLOBAL_FLAGS[name] ?? Object.values(GLOBAL_FLAGS).find((f) => f.alias === name);
    if (!spec) {
      io.stderr(`introspect: unknown option '${a}'\n\n${overview()}`);
      return 2;
    }
    if (spec.type !== 'boolean' && !a.includes('=')) globalsFirst.push(argv[++i] ?? '');
    i++;
  }
  const { command, rest, group } = findCommand(argv.slice(i));
  if (!command) {
    const wantsHelp = globalsFirst.includes('--help') || globalsFirst.includes('-h') || rest.includes('--help') || rest.includes('-h') || argv[i] === 'help';
    if (group) {
      const lines = COMMANDS.filter((c) => c.spec.name.startsWith(group + ' ')).map((c) => `  ${c.spec.name}${c.spec.usage ? ' ' + c.spec.usage : ''}`);
      io.stderr(`introspect ${group}: name a subcommand:\n${lines.join('\n')}\n`);
      return wantsHelp ? 0 : 2;
    }
    if (wantsHelp || argv.length === 0) {
      io.stdout(overview());
      return 0;
    }
    io.stderr(`introspect: unknown command '${argv.slice(i).join(' ')}'\n\n${overview()}`);
    return 2;
  }
  const flags = { ...GLOBAL_FLAGS, ...command.spec.flags };
  let ctx: CliContext | undefined;
  let server: { address: string; from: string } | undefined;
  let args: ParsedArgs | undefined;
  try {
    args = parseArgs([...globalsFirst, ...rest], flags);
    if (args.flags.help) {
      io.stdout(helpText({ ...command.spec, flags }));
      return 0;
    }
    const timeout = args.flags.timeout;
    const security = cliSecurity(args.flags, env);
    server = serverAddress(args.flags, env);
    ctx = new CliContext(server.address, args.flags.json === true, typeof timeout === 'number' ? timeout * 1000 : undefined, io, security, args.flags.quiet === true);
    return (await command.run(args, ctx)) ?? 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`introspect ${command.spec.name}: ${err.message}\n(see introspect ${command.spec.name} --help)\n`);
      return 2;
    }
    if (isServiceError(err) && err.code === status.UNAVAILABLE && server && args?.flags.servers === undefined && /No connection established|connect|ECONNREFUSED|ENOTFOUND|Name resolution/i.test(err.details)) {
      const hint = unreachableHint(server.address, server.from);
      if (ctx?.json) io.stderr(JSON.stringify({ error: { code: 'UNAVAILABLE', message: err.details, server: server.address, hint } }) + '\n');
      else io.stderr(`introspect ${command.spec.name}: ${hint}\n  (UNAVAILABLE: ${err.details})\n`);
      return 3;
    }
    if (isServiceError(err)) {
      const code = status[err.code] ?? String(err.code);
      if (ctx?.json) io.stderr(JSON.stringify({ error: { code, message: err.details } }) + '\n');
      else io.stderr(`introspect ${command.spec.name}: ${code}: ${err.details}\n`);
      return 1;
    }
    throw err;
  } finally {
    ctx?.close();
  }
}

/** Ends the process quietly (status 0) when stdout's reader goes away, as `introspect ... | head` does. */
export function exitQuietlyOnEpipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') exit(0);
    else throw err;
  });
}

if (require.main === module) {
  exitQuietlyOnEpipe(process.stdout);
  const io: CliIo = {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    readStdin: readAllStdin,
    stderrIsTty: process.stderr.isTTY === true,
    stderrColumns: process.stderr.columns,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`introspect: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
