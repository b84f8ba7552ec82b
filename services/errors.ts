/**
 * Domain errors. Services throw these; the server maps `kind` to a gRPC status code
 * (server/errors.ts). Services never import gRPC.
 */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'already-exists'
  | 'failed-precondition'
  | 'resource-exhausted'
  | 'unimplemented'
  | 'cancelled'
  | 'deadline-exceeded'
  | 'permission-denied'
  | 'unauthenticated'
  | 'internal';

export class IntrospectError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'IntrospectError';
  }
}

export const invalidArgument = (message: string): IntrospectError => new IntrospectError('invalid-argument', message);
export const notFound = (message: string): IntrospectError => new IntrospectError('not-found', message);
export const alreadyExists = (message: string): IntrospectError => new IntrospectError('already-exists', message);
export const failedPrecondition = (message: string): IntrospectError =>
  new IntrospectError('failed-precondition', message);
export const resourceExhausted = (message: string): IntrospectError =>
  new IntrospectError('resource-exhausted', message);
export const unimplemented = (message: string): IntrospectError => new IntrospectError('unimplemented', message);
export const cancelled = (message: string): IntrospectError => new IntrospectError('cancelled', message);

/** Throws `cancelled` when the signal has fired. Long loops call this between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof IntrospectError) throw reason;
    throw cancelled(reason instanceof Error ? reason.message : 'the request was cancelled');
  }
}
