import { ValidationError } from '@dsg/core';
import type { z } from 'zod';

/** Validate a request part with a zod schema; errors name the part (`query.limit: …`). */
export function parseOr400<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  throw new ValidationError(
    r.error.issues.map((i) => {
      const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
      const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.join(', ')})` : '';
      return { path: `${where}${path}`, message: i.message.replace(/^Invalid input: /, '') + keys };
    }),
    `invalid ${where}`,
  );
}

export function parseIndex(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new ValidationError([{ path: 'params.index', message: `expected a task index (0, 1, …), got "${text}"` }]);
  return n;
}
