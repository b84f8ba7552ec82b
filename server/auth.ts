/**
 * Optional bearer-token authentication for every RPC except grpc.health.v1 and reflection.
 *
 *   const tokens = await loadTokens('/etc/introspect/tokens');   // one token per line
 *   new Server({ interceptors: [metrics.interceptor(), authInterceptor(tokens)] });
 *
 * No `authorization` metadata → UNAUTHENTICATED; a token that is not one of the configured ones →
 * PERMISSION_DENIED. Tokens are compared in constant time (SHA-256 digests, timingSafeEqual, every
 * token checked) and never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import {
  ResponderBuilder,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type Metadata,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { IntrospectError } from '../services/errors';

/** Methods anyone may call: health checks (probes) and reflection. */
export function isPublicMethod(path: string): boolean {
  return path.startsWith('/grpc.health.v1.') || path.startsWith('/grpc.reflection.');
}

/** The tokens of a token file: one per line, surrounding blanks trimmed, empty lines and `#` comments skipped. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Reads a token file; throws IntrospectError when it is unreadable or holds no token. */
export async function loadTokens(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new IntrospectError('invalid-argument', `auth token file ${file}: ${(err as Error).message}`);
  }
  const tokens = parseTokens(text);
  if (tokens.length === 0) throw new IntrospectError('invalid-argument', `auth token file ${file} holds no token`);
  return tokens;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Checks presented tokens against the configured ones in time independent of where they differ. */
export class TokenSet {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    if (tokens.length === 0) throw new IntrospectError('invalid-argument', 'at least one auth token is needed');
    this.digests = tokens.map(digest);
  }

  has(token: string): boolean {
    const d = digest(token);
    let ok = false;
    for (const x of this.digests) ok = timingSafeEqual(x, d) || ok; // no early exit
    return ok;
  }
}

export type AuthOutcome = { ok: true } | { ok: false; code: status; details: string };

/** The decision for a call's metadata. */
export function authorize(tokens: TokenSet, metadata: Metadata): AuthOutcome {
  const values = metadata.get('authorization');
  if (values.length === 0) {
    return { ok: false, code: status.UNAUTHENTICATED, details: "missing 'authorization: Bearer <token>' metadata" };
  }
  const value = String(values[0]);
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  if (!m) {
    return { ok: false, code: status.UNAUTHENTICATED, details: "the 'authorization' metadata is not of the form 'Bearer <token>'" };
  }
  if (!tokens.has(m[1]!)) return { ok: false, code: status.PERMISSION_DENIED, details: 'the bearer token is not accepted by this server' };
  return { ok: true };
}

/** A grpc-js server interceptor answering calls without an accepted token before they reach a handler. */
export function authInterceptor(tokens: TokenSet, onDenied?: (method: string, code: status) => void): ServerInterceptor {
  return (method, call) => {
    if (isPublicMethod(method.path)) return new ServerInterceptingCall(call);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        const outcome = authorize(tokens, metadata);
        if (outcome.ok) return next(metadata);
        onDenied?.(method.path, outcome.code);
        call.sendStatus({ code: outcome.code, details: outcome.details });
      })
      .build();
    return new ServerInterceptingCall(call, new ResponderBuilder().withStart((next) => next(listener)).build());
  };
}
