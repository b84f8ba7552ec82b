/** gRPC server reflection (v1 and v1alpha) over the API's proto files and grpc.health.v1. */
import type { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import * as path from 'node:path';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { API_PROTO_FILES, findProtoRoot } from '../api/proto-files';

export function addReflection(server: Server): void {
  const healthRoot = path.resolve(path.dirname(healthProtoPath), '..', '..');
  const healthFile = path.relative(healthRoot, healthProtoPath);
  const definition = loadSync([...API_PROTO_FILES, healthFile], {
    includeDirs: [findProtoRoot(), healthRoot],
  });
  new ReflectionService(definition).addToServer(server);
}
