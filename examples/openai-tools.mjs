// An agent loop and a structured output with the OpenAI SDK, unchanged, against the platform.
// Usage: PLATFORM_API_KEY=mt_... node examples/openai-tools.mjs [baseURL]
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.argv[2] ?? `http://127.0.0.1:${process.env.PORT ?? 8787}/v1`,
  apiKey: process.env.PLATFORM_API_KEY,
});
const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Get the current weather for a city',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    },
  },
];
const messages = [{ role: 'user', content: 'What is the weather in Paris?' }];

// model -> tool call -> tool result -> answer
const first = await client.chat.completions.create({ model: 'nova-micro', messages, tools });
const call = first.choices[0].message.tool_calls?.[0];
console.log('tool call:', call?.function.name, call?.function.arguments);
messages.push(first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 21}' });
const answer = await client.chat.completions.create({ model: 'nova-micro', messages, tools });
console.log('answer:', answer.choices[0].message.content);

// structured output: the answer is JSON valid against the schema
const report = await client.chat.completions.create({
  model: 'nova-micro',
  messages: [{ role: 'user', content: 'Report the weather in Paris' }],
  response_format: {
    type: 'json_schema',
    json_schema: {
      name: 'weather_report',
      strict: true,
      schema: {
        type: 'object',
        properties: { city: { type: 'string' }, temp_c: { type: 'number' } },
        required: ['city', 'temp_c'],
        additionalProperties: false,
      },
    },
  },
});
console.log('structured:', JSON.parse(report.choices[0].message.content));
