/**
 * Fixed-size records in a file after a header: read by offset (raw files) or by streaming
 * decompression (.gz files). Never holds more than the requested records in memory.
 */
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { invalidArgument, throwIfAborted } from '../errors';

export interface RecordLayout {
  file: string;
  header: number;
  recordSize: number;
}

/** Reads the records `indices` (any order) into one buffer, in that order. */
export async function readRecords(handle: FileHandle, layout: RecordLayout, indices: Int32Array): Promise<Buffer> {
  const { recordSize } = layout;
  const out = Buffer.allocUnsafe(indices.length * recordSize);
  if (indices.length === 0) return out;
  let lo = indices[0];
  let hi = indices[0];
  let ascending = true;
  for (let i = 1; i < indices.length; i++) {
    const v = indices[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
    if (v <= indices[i - 1]) ascending = false;
  }
  const span = hi - lo + 1;
  if (span === indices.length && ascending) {
    await readExactly(handle, layout, out, lo, span);
    return out;
  }
  if (span <= 8 * indices.length + 64) {
    // Dense enough: one read of the whole span, then pick.
    const block = Buffer.allocUnsafe(span * recordSize);
    await readExactly(handle, layout, block, lo, span);
    for (let i = 0; i < indices.length; i++) {
      const at = (indices[i] - lo) * recordSize;
      block.copy(out, i * recordSize, at, at + recordSize);
    }
    return out;
  }
  // Sparse: one read per run of consecutive indices.
  const reads: Promise<void>[] = [];
  let start = 0;
  for (let i = 1; i <= indices.length; i++) {
    if (i === indices.length || indices[i] !== indices[i - 1] + 1) {
      const runStart = start;
      const runLength = i - start;
      reads.push(
        readExactly(handle, layout, out.subarray(runStart * recordSize, (runStart + runLength) * recordSize), indices[runStart], runLength),
      );
      start = i;
    }
  }
  await Promise.all(reads);
  return out;
}

async function readExactly(handle: FileHandle, layout: RecordLayout, into: Buffer, first: number, count: number): Promise<void> {
  const bytes = count * layout.recordSize;
  let done = 0;
  while (done < bytes) {
    const { bytesRead } = await handle.read(into, done, bytes - done, layout.header + first * layout.recordSize + done);
    if (bytesRead === 0) throw invalidArgument(`${layout.file}: file is truncated (record ${first + count - 1} is past its end)`);
    done += bytesRead;
  }
}

export interface RecordBlock {
  /** Index of the first record in `data`. */
  first: number;
  count: number;
  data: Buffer;
}

/**
 * Streams a gzip-compressed record file from the start: yields blocks of whole records.
 * Stops after `until` records (exclusive) when given.
 */
export async function* gzRecordBlocks(layout: RecordLayout, until: number, signal?: AbortSignal): AsyncGenerator<RecordBlock> {
  const { recordSize, header, file } = layout;
  const source = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  const gunzip = zlib.createGunzip({ chunkSize: 1 << 20 });
  const stream = source.pipe(gunzip);
  source.on('error', (e) => gunzip.destroy(e));
  let skip = header;
  let carry: Buffer | undefined;
  let next = 0;
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      throwIfAborted(signal);
      let chunk = piece;
      if (skip > 0) {
        const s = Math.min(skip, chunk.length);
        skip -= s;
        chunk = chunk.subarray(s);
        if (chunk.length === 0) continue;
      }
      if (carry && carry.length > 0) chunk = Buffer.concat([carry, chunk]);
      const whole = Math.floor(chunk.length / recordSize);
      const take = Math.min(whole, until - next);
      if (take > 0) {
        yield { first: next, count: take, data: chunk.subarray(0, take * recordSize) };
        next += take;
      }
      if (next >= until) return;
      carry = chunk.subarray(whole * recordSize);
      if (carry.length > 0) carry = Buffer.from(carry);
    }
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && String((e as { code: string }).code).startsWith('Z_')) {
      throw invalidArgument(`${file}: corrupt or truncated gzip data (${e.message})`);
    }
    throw e;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  if (next < until) throw invalidArgument(`${file}: file is truncated (${next} of ${until} records)`);
}

/** Reads the whole (small) decompressed content of a gzip file, or a prefix of it. */
export async function gunzipPrefix(file: string, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  const source = fs.createReadStream(file);
  const gunzip = zlib.createGunzip();
  source.on('error', (e) => gunzip.destroy(e));
  try {
    for await (const piece of source.pipe(gunzip) as AsyncIterable<Buffer>) {
      parts.push(piece);
      have += piece.length;
      if (have >= bytes) break;
    }
  } catch (e) {
    if (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('Z_')) {
      throw invalidArgument(`${file}: corrupt or truncated gzip data (${e.message})`);
    }
    throw e;
  } finally {
    source.destroy();
    gunzip.destroy();
  }
  const all = Buffer.concat(parts);
  return all.subarray(0, Math.min(bytes, all.length));
}

/** The uncompressed size recorded in a gzip trailer (ISIZE, modulo 2^32). */
export async function gzipTrailerSize(file: string): Promise<number> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size < 18) throw invalidArgument(`${file}: too short to be a gzip file`);
    const b = Buffer.alloc(4);
    await handle.read(b, 0, 4, size - 4);
    return b.readUInt32LE(0);
  } finally {
    await handle.close();
  }
}
