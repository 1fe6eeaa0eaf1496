/**
 * zod for everything a Lambda bundles: zod/mini, whose functions (`z.optional(schema)`) the bundler
 * drops when unused, where classic zod's methods hold all of it: 41 KB of a bundle instead of 101,
 * the same parsing and the same issues. zod/mini loads no locale, so its messages would all be
 * "Invalid input": English is set here, as classic zod sets it, for the 400s that quote them
 * (`temperature: Too big: expected number to be <=2`). Local runs and tests also load classic zod
 * (lib/, local/), which sets it too: only bundles.test.ts sees a bundle without it.
 */
import { en } from 'zod/locales';
import { config } from 'zod/mini';

config(en());

export * from 'zod/mini';
/** What a parse throws (classic zod's error is one too). */
export { $ZodError as ZodError } from 'zod/v4/core';
