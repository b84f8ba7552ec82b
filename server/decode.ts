/**
 * Request decoding that fails as INVALID_ARGUMENT instead of grpc-js's INTERNAL. grpc-js answers
 * INTERNAL ("Error deserializing request") when a service definition's deserializer throws — for
 * example on a uint64 above 2^53, which the generated code (forceLong=number) refuses. Wrapped
 * definitions return an `UndecodableRequest` instead; the handler plumbing (rpc.ts) turns it into an
 * INVALID_ARGUMENT status naming the message type and the reason.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import { invalidArgument } from '../services/errors';

export class UndecodableRequest {
  constructor(
    readonly method: string,
    readonly reason: string,
  ) {}
}

export function tolerantDecoding<T extends ServiceDefinition>(definition: T): T {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (err) {
          return new UndecodableRequest(method.path, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out as unknown as T;
}

/** The request itself, or INVALID_ARGUMENT when it could not be decoded. */
export function decodedRequest<Req>(req: Req): Req {
  if (req instanceof UndecodableRequest) {
    throw invalidArgument(`the request to ${req.method} could not be decoded: ${req.reason}`);
  }
  return req;
}
