// The OpenAI SDK, unchanged, against the platform: only baseURL and the key differ.
// Usage: PLATFORM_API_KEY=mt_... node examples/openai-chat.mjs [baseURL]
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.argv[2] ?? `http://127.0.0.1:${process.env.PORT ?? 8787}/v1`,
  apiKey: process.env.PLATFORM_API_KEY,
});
const completion = await client.chat.completions.create({
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'What can this platform do?' }],
  max_tokens: 64,
});
console.log(completion.choices[0].message.content);
console.log(completion.usage);
