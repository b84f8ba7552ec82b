/**
 * `--servers A,B,C` (and `--replicas N` for one DNS name) for the CLI commands that can shard:
 * `introspect similarity` and `introspect prune`.
 */
import { status } from '@grpc/grpc-js';
import { UsageError, listFlag, type FlagSpec, type ParsedArgs } from './cli/args';
import type { CliContext } from './cli/context';
import { ShardedClient } from './sharded';

export const SERVERS_FLAGS: Record<string, FlagSpec> = {
  servers: {
    type: 'string',
    arg: 'A,B,..',
    help: 'split the job over these servers (the model and data set loaded on each); one DNS name (dns:///svc:50051) is balanced round_robin over its addresses',
  },
  replicas: { type: 'number', arg: 'N', help: 'with one --servers name: the replicas behind it (shards in flight = 2 × N)' },
};

/** The sharded client `--servers` asks for (the caller closes it), or undefined to use `ctx.client`. */
export function shardedClientFor(args: ParsedArgs, ctx: CliContext): ShardedClient | undefined {
  const servers = listFlag(args.flags.servers);
  const replicas = args.flags.replicas;
  if (replicas !== undefined && !(typeof replicas === 'number' && Number.isInteger(replicas) && replicas >= 1)) {
    throw new UsageError(`--replicas must be a positive integer, got ${String(replicas)}`);
  }
  if (servers.length === 0) {
    if (replicas !== undefined) throw new UsageError('--replicas goes with --servers');
    return undefined;
  }
  return new ShardedClient(servers, {
    ...ctx.security,
    replicas: typeof replicas === 'number' ? replicas : undefined,
    onRetry: (e) => ctx.io.stderr(`retrying ${e.shard} (attempt ${e.attempt} failed on ${e.server}: ${status[e.code] ?? e.code}: ${e.details})\n`),
  });
}
