/**
 * Where the API's .proto files are at run time (for reflection): `proto/` at the package root, found
 * by walking up from this file (it runs from a build folder or from the sources).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const API_PROTO_FILES = [
  'introspect/v1/common.proto',
  'introspect/v1/models.proto',
  'introspect/v1/datasets.proto',
  'introspect/v1/analysis.proto',
] as const;

export const API_SERVICES = [
  'introspect.v1.ModelService',
  'introspect.v1.DatasetService',
  'introspect.v1.AnalysisService',
] as const;

export function findProtoRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, API_PROTO_FILES[1]))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`proto/${API_PROTO_FILES[1]} not found above ${from}`);
    dir = parent;
  }
}
