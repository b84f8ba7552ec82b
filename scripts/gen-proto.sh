#!/usr/bin/env bash
# Generates TypeScript from proto/ with ts-proto, offline: buf (npm package @bufbuild/buf, binary inside
# the package) drives the local ts-proto plugin.
#   proto/introspect/v1 -> api/generated       (message types, grpc-js client and service definitions)
#   proto/onnx          -> services/graph/generated (the ONNX model codec)
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf gen api/generated services/graph/generated
npx --no-install buf generate --template buf.gen.yaml --path proto/introspect
npx --no-install buf generate --template buf.gen.onnx.yaml --path proto/onnx
