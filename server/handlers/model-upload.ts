/** UploadModel's client stream decoded at the boundary: the header checked at once, then the chunks within the limits. */
import type { UploadModelHeader, UploadModelRequest } from '../../api/generated/introspect/v1/models';
import { invalidArgument, resourceExhausted } from '../../services/errors';
import { modelFormatFromWire, requireName } from '../convert';

export interface Upload {
  header: UploadModelHeader;
  bytes: Buffer;
}

/**
 * Reads an upload: header first (checked at once: name free, format ONNX, announced size within the
 * limit), then chunks, stopping as soon as the bytes pass the limit or the announced size.
 */
export async function receiveUpload(
  requests: AsyncIterable<UploadModelRequest>,
  maxBytes: number,
  assertNameFree: (name: string) => void,
): Promise<Upload> {
  let header: UploadModelHeader | undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const msg of requests) {
    const part = msg.part;
    if (!header) {
      if (part?.$case !== 'header') throw invalidArgument('header: the first UploadModel message must carry the header');
      header = part.value;
      assertNameFree(requireName(header.name, 'header.name'));
      const format = modelFormatFromWire(header.format, 'header.format');
      if (format && format !== 'onnx') {
        throw invalidArgument('header.format: uploads take ONNX models only; load tfjs models from the model root with LoadModel');
      }
      if (!(header.sizeBytes > 0)) throw invalidArgument('header.size_bytes is required: the size of the file in bytes');
      if (header.sizeBytes > maxBytes) {
        throw resourceExhausted(`header.size_bytes: ${header.sizeBytes} bytes is more than the server's upload limit of ${maxBytes} bytes`);
      }
      continue;
    }
    if (part?.$case === 'header') throw invalidArgument('header: only the first UploadModel message may carry a header');
    if (part?.$case !== 'chunk') throw invalidArgument('chunk: every message after the header must carry a chunk');
    received += part.value.byteLength;
    if (received > maxBytes) {
      throw resourceExhausted(`the upload passed the server's limit of ${maxBytes} bytes`);
    }
    if (received > header.sizeBytes) {
      throw invalidArgument(`header.size_bytes announced ${header.sizeBytes} bytes but more arrived`);
    }
    chunks.push(part.value);
  }
  if (!header) throw invalidArgument('header: the upload carried no messages');
  if (received !== header.sizeBytes) {
    throw invalidArgument(`header.size_bytes announced ${header.sizeBytes} bytes but the upload carried ${received}`);
  }
  return { header, bytes: Buffer.concat(chunks, received) };
}

