import { ValidationError } from '@dsg/core/base';

export function parseLimit(text: string, max: number, flag = '--limit'): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new ValidationError([{ path: flag, message: `expected a whole number from 1 to ${max}, got "${text}"` }]);
  return n;
}

export function parseIndexFlag(text: string, flag = '--task'): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError([{ path: flag, message: `expected a task index (0, 1, …), got "${text}"` }]);
  return n;
}

export function parseState<T extends string>(text: string, allowed: readonly T[], flag: string): T {
  if (!allowed.includes(text as T)) throw new ValidationError([{ path: flag, message: `expected one of ${allowed.join(', ')}, got "${text}"` }]);
  return text as T;
}

export function parsePositiveNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new ValidationError([{ path: flag, message: `expected a positive number, got "${text}"` }]);
  return n;
}
