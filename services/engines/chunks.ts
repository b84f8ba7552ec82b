/**
 * How to split a batch of rows (images, or neurons of one attribution) into chunks that fit a memory budget
 * and keep every worker busy.
 */
import type { IrGraph } from '../graph/ir';
import { sizeOf } from './requests';

export interface Chunk {
  start: number;
  end: number; // exclusive
}

const FLOAT = 4;

/** Bytes one image of a forward pass holds at most: every value of the graph (engines free some earlier). */
export function forwardRowBytes(g: IrGraph): number {
  let floats = sizeOf(g.input.shape);
  for (const n of g.nodes) floats += sizeOf(g.shapes.get(n.output) ?? [0]);
  return floats * FLOAT;
}

/**
 * Bytes one row (one neuron) of a batched backward pass needs: the output image, plus the gradient of every value
 * between the input and the target and a temporary of the same size for each (masks, products), plus the seed.
 */
export function attributionRowBytes(g: IrGraph, targetValue: string): number {
  let floats = 0;
  for (const n of g.nodes) {
    floats += sizeOf(g.shapes.get(n.output) ?? [0]);
    if (n.output === targetValue) break;
  }
  return (sizeOf(g.input.shape) + 2 * floats) * FLOAT;
}

/**
 * Splits `total` rows into contiguous chunks of at most `budgetBytes / parallel` bytes each (at least one row),
 * and into at least `parallel` chunks when there are that many rows, so that every worker gets work; at most
 * `maxRows` rows a chunk.
 */
export function planChunks(total: number, rowBytes: number, budgetBytes: number, parallel: number, maxRows = Infinity): Chunk[] {
  if (total <= 0) return [];
  const perChunk = Math.max(1, Math.min(maxRows, Math.floor(budgetBytes / Math.max(1, parallel) / Math.max(1, rowBytes))));
  const count = Math.max(Math.ceil(total / perChunk), Math.min(Math.max(1, parallel), total));
  const base = Math.floor(total / count);
  const extra = total % count;
  const chunks: Chunk[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size = base + (i < extra ? 1 : 0);
    chunks.push({ start, end: start + size });
    start += size;
  }
  return chunks;
}
