import { randomBytes } from 'node:crypto';
import * as z from '../../contract/zod';

/** `?limit=&cursor=` of every paged list: at most 100 a page, an opaque cursor from the previous page. */
export const pageQuerySchema = z.strictObject({
  limit: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(100)), 20),
  cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
});

/**
 * An id of `prefix` that sorts before every older one (a store lists in key order, newest first):
 * the time to the year 2286 in base 36, then 48 random bits.
 */
export function newestFirstId(prefix: string, nowMs: number): string {
  const untilEnd = (9_999_999_999_999 - nowMs).toString(36).padStart(9, '0');
  return `${prefix}${untilEnd}${randomBytes(6).toString('hex')}`;
}

/** OpenAI's cursor page (files, batches): the page's items, its first and last ids, whether more follow. */
export function cursorPage<T extends { readonly id: string }>(data: readonly T[], hasMore: boolean) {
  return {
    object: 'list' as const,
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: hasMore,
  };
}
