import * as z from 'zod';

/** `?limit=&cursor=` of every paged list: at most 100 a page, an opaque cursor from the previous page. */
export const pageQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().min(1).max(512).optional(),
  })
  .strict();
