/**
 * Every RPC of the API, found from the .proto files (for the method list and message type names)
 * and bound to the generated ts-proto message codecs (binary and canonical proto3 JSON).
 * This is what lets `introspect call <Service>.<Method>` drive any RPC generically.
 */
import { loadSync } from '@grpc/proto-loader';
import * as analysis from './generated/introspect/v1/analysis';
import * as common from './generated/introspect/v1/common';
import * as datasets from './generated/introspect/v1/datasets';
import * as models from './generated/introspect/v1/models';
import { API_PROTO_FILES, findProtoRoot } from './proto-files';

/** What ts-proto generates for each message. */
export interface MessageCodec {
  encode(message: unknown): { finish(): Uint8Array };
  decode(input: Uint8Array): unknown;
  fromJSON(object: unknown): unknown;
  toJSON(message: unknown): unknown;
}

export interface MethodInfo {
  /** "introspect.v1.ModelService" */
  service: string;
  /** "LoadModel" */
  method: string;
  /** "/introspect.v1.ModelService/LoadModel" */
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: string;
  responseType: string;
  request: MessageCodec;
  response: MessageCodec;
}

const MODULES: Record<string, unknown>[] = [common, models, datasets, analysis];

function codec(typeName: string): MessageCodec {
  for (const mod of MODULES) {
    const c = mod[typeName] as Partial<MessageCodec> | undefined;
    if (c && typeof c.encode === 'function' && typeof c.fromJSON === 'function') return c as MessageCodec;
  }
  throw new Error(`no generated codec for message ${typeName} (run npm run build)`);
}

interface LoadedMethod {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestType: { type: { name: string } };
  responseType: { type: { name: string } };
}

let cached: MethodInfo[] | undefined;

/** All methods of the API services, in proto order. */
export function apiMethods(): MethodInfo[] {
  if (cached) return cached;
  const definition = loadSync([...API_PROTO_FILES], { includeDirs: [findProtoRoot()] });
  const out: MethodInfo[] = [];
  for (const [name, value] of Object.entries(definition)) {
    if (typeof value !== 'object' || value === null || 'format' in value) continue; // messages and enums
    for (const [method, def] of Object.entries(value as Record<string, LoadedMethod>)) {
      out.push({
        service: name,
        method,
        path: def.path,
        requestStream: def.requestStream,
        responseStream: def.responseStream,
        requestType: def.requestType.type.name,
        responseType: def.responseType.type.name,
        request: codec(def.requestType.type.name),
        response: codec(def.responseType.type.name),
      });
    }
  }
  cached = out;
  return out;
}

/**
 * Finds a method by "ModelService.LoadModel", "introspect.v1.ModelService.LoadModel" or
 * "/introspect.v1.ModelService/LoadModel" (case-insensitive).
 */
export function findMethod(spec: string): MethodInfo | undefined {
  const s = spec.trim().replace(/^\//, '').replace('/', '.').toLowerCase();
  return apiMethods().find((m) => {
    const short = `${m.service.split('.').pop()}.${m.method}`.toLowerCase();
    const full = `${m.service}.${m.method}`.toLowerCase();
    return s === short || s === full;
  });
}
