import { PlatformError } from './errors';

/**
 * Token ids back to text. LangChain's OpenAI embeddings send token ids by default, made with
 * tiktoken's `cl100k_base` (its encoding for model names it does not know, as ours): the embedding
 * models here take text, so the ids are decoded with that vocabulary. It is a megabyte of data,
 * loaded on the first request that needs it, never before.
 */

/** The highest id of `cl100k_base`, its special tokens included. */
export const CL100K_LAST_TOKEN_ID = 100_276;

export async function textOfTokenIds(ids: readonly number[]): Promise<string> {
  const { decode } = await import('gpt-tokenizer/encoding/cl100k_base');
  try {
    return decode(ids);
  } catch {
    // A gap of the vocabulary (100256, say): the caller's mistake, named.
    throw new PlatformError('invalid_request', 'input: a token id is not one of cl100k_base');
  }
}
