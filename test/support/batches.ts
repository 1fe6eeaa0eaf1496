/** A batch input file of `count` chat lines for `model`, ids `request-<i>`, as the official SDK uploads them. */
export function chatLines(count: number, model = 'nova-micro'): string {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      custom_id: `request-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model, messages: [{ role: 'user', content: `Classify item number ${i}` }], max_tokens: 16 },
    }),
  ).join('\n');
}

/** The JSON lines of an output or error file. */
export function jsonLines(text: string) {
  return text
    .split('\n')
    .filter((row) => row !== '')
    .map((row) => JSON.parse(row));
}
