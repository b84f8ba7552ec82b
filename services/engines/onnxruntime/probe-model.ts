/** A one-node ONNX model (y = Identity(x), float [1]) used to check that an execution provider loads. */
import { ModelProto, TensorProto_DataType } from '../../graph/generated/onnx/onnx';

export function identityModelBytes(): Uint8Array {
  const value = (name: string) => ({
    name,
    type: { tensorType: { elemType: TensorProto_DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
  });
  return ModelProto.encode(
    ModelProto.fromPartial({
      irVersion: 8,
      producerName: 'cnn-introspect',
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'probe',
        node: [{ name: 'identity', opType: 'Identity', input: ['x'], output: ['y'] }],
        input: [value('x')],
        output: [value('y')],
      },
    }),
  ).finish();
}
