/** Checks shared by the wrappers' parameters; every error names the request field. */
import { invalidArgument } from '../errors';

/** An integer count in 1..max; `undefined` or 0 (proto3's unset) gives the default. */
export function countParam(value: number | undefined, fallback: number, max: number, field: string): number {
  const v = value === undefined || value === 0 ? fallback : value;
  if (!Number.isInteger(v) || v < 1 || v > max) throw invalidArgument(`${field} = ${v} must be an integer in 1..${max}`);
  return v;
}

/** A finite number in (0, max]; `undefined` or 0 (proto3's unset) gives the default. */
export function positiveParam(value: number | undefined, fallback: number, max: number, field: string): number {
  const v = value === undefined || value === 0 ? fallback : value;
  if (!Number.isFinite(v) || v <= 0 || v > max) throw invalidArgument(`${field} = ${v} must be a number in (0, ${max}]`);
  return v;
}
