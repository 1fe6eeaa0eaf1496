import * as z from '../../contract/zod';

/** `?limit=&cursor=` of every paged list: at most 100 a page, an opaque cursor from the previous page. */
export const pageQuerySchema = z.strictObject({
  limit: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(100)), 20),
  cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(512))),
});
