/**
 * Domain errors → gRPC status. IntrospectError kinds map one to one; anything else is a bug: it is
 * logged with its stack under a short incident id and answered INTERNAL without internals.
 */
import { randomBytes } from 'node:crypto';
import { status, type StatusObject } from '@grpc/grpc-js';
import { IntrospectError, type ErrorKind } from '../services/errors';
import type { Logger } from './log';

const CODES: Record<ErrorKind, status> = {
  'invalid-argument': status.INVALID_ARGUMENT,
  'not-found': status.NOT_FOUND,
  'already-exists': status.ALREADY_EXISTS,
  'failed-precondition': status.FAILED_PRECONDITION,
  'resource-exhausted': status.RESOURCE_EXHAUSTED,
  unimplemented: status.UNIMPLEMENTED,
  cancelled: status.CANCELLED,
  'deadline-exceeded': status.DEADLINE_EXCEEDED,
  'permission-denied': status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  internal: status.INTERNAL,
};

export function statusCodeFor(kind: ErrorKind): status {
  return CODES[kind];
}

/** "INVALID_ARGUMENT" for 3, and so on. */
export function statusName(code: number): string {
  return status[code] ?? String(code);
}

/** A status carried by an error that is already a gRPC status (e.g. from a nested call). */
function grpcStatusOf(err: unknown): { code: status; details: string } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; details?: unknown };
  if (typeof e.code === 'number' && e.code > 0 && e.code <= 16 && typeof e.details === 'string') {
    return { code: e.code as status, details: e.details };
  }
  return undefined;
}

export type ErrorStatus = Pick<StatusObject, 'code' | 'details'>;

/** The status to answer for an error thrown by a handler or a service. */
export function toStatus(err: unknown, log: Logger, context: Record<string, unknown> = {}): ErrorStatus {
  if (err instanceof IntrospectError) {
    const code = statusCodeFor(err.kind);
    if (code === status.INTERNAL) {
      log.error('internal error', { ...context, error: err });
    } else {
      log.debug('request failed', { ...context, code: statusName(code), message: err.message });
    }
    return { code, details: err.message };
  }
  const g = grpcStatusOf(err);
  if (g) return g;
  const incident = randomBytes(4).toString('hex');
  log.error('unexpected error', { ...context, incident, error: err instanceof Error ? err : String(err) });
  return { code: status.INTERNAL, details: `internal error (incident ${incident}; the server log has the details)` };
}
