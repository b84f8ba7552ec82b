/**
 * Server transport credentials from the configuration: plaintext, TLS (`--tls-cert`, `--tls-key`), or
 * mutual TLS (`--tls-client-ca` as well: client certificates are required and verified against it).
 */
import * as fs from 'node:fs';
import { ServerCredentials } from '@grpc/grpc-js';
import { IntrospectError } from '../services/errors';

export interface TlsFiles {
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
}

async function read(file: string, what: string): Promise<Buffer> {
  try {
    return await fs.promises.readFile(file);
  } catch (err) {
    throw new IntrospectError('invalid-argument', `${what} ${file}: ${(err as Error).message}`);
  }
}

/** Whether the config asks for TLS. */
export function tlsEnabled(c: TlsFiles): boolean {
  return c.tlsCert !== undefined || c.tlsKey !== undefined || c.tlsClientCa !== undefined;
}

/** Insecure when no TLS file is configured; throws IntrospectError for an incomplete or unreadable set. */
export async function serverCredentials(c: TlsFiles): Promise<ServerCredentials> {
  if (!tlsEnabled(c)) return ServerCredentials.createInsecure();
  if (c.tlsCert === undefined || c.tlsKey === undefined) {
    throw new IntrospectError('invalid-argument', 'TLS needs both --tls-cert and --tls-key (--tls-client-ca alone is not enough)');
  }
  const [cert, key, ca] = await Promise.all([
    read(c.tlsCert, '--tls-cert'),
    read(c.tlsKey, '--tls-key'),
    c.tlsClientCa !== undefined ? read(c.tlsClientCa, '--tls-client-ca') : Promise.resolve(null),
  ]);
  try {
    return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
  } catch (err) {
    throw new IntrospectError('invalid-argument', `TLS files rejected: ${(err as Error).message}`);
  }
}
