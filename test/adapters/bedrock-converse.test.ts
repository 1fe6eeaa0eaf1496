import {
  converseAnswer,
  converseInput,
  converseStreamReader,
  converseUsage,
} from '../../lambdas/adapters/bedrock-converse';
import type { GenerateRequest, ToolDefinition } from '../../lambdas/core/ports';

const weather: ToolDefinition = {
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const base: GenerateRequest = {
  modelId: 'amazon.nova-micro-v1:0',
  maxTokens: 100,
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Weather in Paris and Rome?' },
    {
      role: 'assistant',
      content: '',
      toolCalls: [
        { id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 'c2', name: 'get_weather', arguments: 'not json' },
      ],
    },
    { role: 'tool', toolCallId: 'c1', content: '21 C' },
    { role: 'tool', toolCallId: 'c2', content: '' },
  ],
};

describe('Converse mapping: the model port to Bedrock', () => {
  it('sends tools as toolConfig, calls as toolUse blocks and results as toolResult blocks of one user turn', () => {
    expect(converseInput({ ...base, tools: [weather], toolChoice: 'required' })).toEqual({
      modelId: 'amazon.nova-micro-v1:0',
      system: [{ text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ text: 'Weather in Paris and Rome?' }] },
        {
          role: 'assistant',
          content: [
            { toolUse: { toolUseId: 'c1', name: 'get_weather', input: { city: 'Paris' } } },
            // Arguments that are no JSON object go as an empty input, never a failed request.
            { toolUse: { toolUseId: 'c2', name: 'get_weather', input: {} } },
          ],
        },
        {
          role: 'user',
          content: [
            { toolResult: { toolUseId: 'c1', content: [{ text: '21 C' }] } },
            { toolResult: { toolUseId: 'c2', content: [{ text: '(empty)' }] } },
          ],
        },
      ],
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'get_weather',
              description: 'Weather for a city',
              inputSchema: { json: weather.parameters },
            },
          },
        ],
        toolChoice: { any: {} },
      },
      inferenceConfig: { maxTokens: 100 },
    });
  });

  it("tells earlier tool turns as text when tool_choice is none (Converse has no 'none')", () => {
    const input = converseInput({ ...base, tools: [weather], toolChoice: 'none' });
    expect(input.toolConfig).toBeUndefined();
    expect(input.messages?.[1].content).toEqual([
      { text: 'Called tool get_weather (c1) with {"city":"Paris"}' },
      { text: 'Called tool get_weather (c2) with not json' },
    ]);
    expect(input.messages?.[2].content).toEqual([
      { text: 'Result of tool call c1: 21 C' },
      { text: 'Result of tool call c2: ' },
    ]);
  });

  it('asks for a response format as a forced tool, or among the tools (some tool must be called)', () => {
    const format = { type: 'json_schema', name: 'report', schema: { type: 'object' }, strict: true } as const;
    const alone = converseInput({ ...base, messages: base.messages.slice(0, 2), responseFormat: format });
    expect(alone.toolConfig).toEqual({
      tools: [
        {
          toolSpec: {
            name: 'report',
            description: 'Answer with the report JSON object.',
            inputSchema: { json: { type: 'object' } },
          },
        },
      ],
      toolChoice: { tool: { name: 'report' } },
    });
    const withTools = converseInput({ ...base, tools: [weather], responseFormat: format });
    expect(withTools.toolConfig?.toolChoice).toEqual({ any: {} });
    expect(withTools.toolConfig?.tools?.map((tool) => tool.toolSpec?.name)).toEqual(['get_weather', 'report']);
    expect(() =>
      converseInput({ ...base, tools: [weather], responseFormat: { ...format, name: 'get_weather' } }),
    ).toThrow(/also a tool's name/);
  });

  it('marks cache points after the messages and tools that carry them', () => {
    const input = converseInput({
      ...base,
      messages: [
        { role: 'system', content: 'Long rules', cachePoint: true },
        { role: 'user', content: 'Hi', cachePoint: true },
      ],
      tools: [weather],
      cacheTools: true,
    });
    expect(input.system).toEqual([{ text: 'Long rules' }, { cachePoint: { type: 'default' } }]);
    expect(input.messages?.[0].content).toEqual([{ text: 'Hi' }, { cachePoint: { type: 'default' } }]);
    expect(input.toolConfig?.tools?.at(-1)).toEqual({ cachePoint: { type: 'default' } });
  });
});

describe('Converse mapping: Bedrock to the model port', () => {
  it('reads text and tool calls; a call of the response-format tool is the answer text', () => {
    const request: GenerateRequest = { ...base, tools: [weather] };
    expect(
      converseAnswer(
        request,
        [
          { text: 'Checking.' },
          { toolUse: { toolUseId: 't1', name: 'get_weather', input: { city: 'Paris' } } },
          { toolUse: { toolUseId: 't2', name: 'get_weather', input: { city: 'Rome' } } },
        ],
        'tool_use',
      ),
    ).toEqual({
      text: 'Checking.',
      finishReason: 'tool_calls',
      toolCalls: [
        { id: 't1', name: 'get_weather', arguments: '{"city":"Paris"}' },
        { id: 't2', name: 'get_weather', arguments: '{"city":"Rome"}' },
      ],
    });
    // One call only, when the caller asked so.
    expect(
      converseAnswer(
        { ...request, parallelToolCalls: false },
        [
          { toolUse: { toolUseId: 't1', name: 'get_weather', input: {} } },
          { toolUse: { toolUseId: 't2', name: 'get_weather', input: {} } },
        ],
        'tool_use',
      ).toolCalls,
    ).toHaveLength(1);
    const formatted: GenerateRequest = { ...request, responseFormat: { type: 'json_object' } };
    expect(
      converseAnswer(formatted, [{ toolUse: { toolUseId: 't', name: 'json_response', input: { a: 1 } } }], 'tool_use'),
    ).toEqual({
      text: '{"a":1}',
      finishReason: 'stop',
    });
  });

  it('numbers streamed tool calls in their order, their input pieces as argument deltas', () => {
    const reader = converseStreamReader({ ...base, tools: [weather], responseFormat: { type: 'json_object' } });
    const events = [
      { contentBlockDelta: { contentBlockIndex: 0, delta: { text: 'Hm. ' } } },
      { contentBlockStart: { contentBlockIndex: 1, start: { toolUse: { toolUseId: 't1', name: 'get_weather' } } } },
      { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '{"city":' } } } },
      { contentBlockDelta: { contentBlockIndex: 1, delta: { toolUse: { input: '"Paris"}' } } } },
      { contentBlockStart: { contentBlockIndex: 2, start: { toolUse: { toolUseId: 't2', name: 'json_response' } } } },
      { contentBlockDelta: { contentBlockIndex: 2, delta: { toolUse: { input: '{}' } } } },
    ].flatMap((event) => reader.read(event as never));
    expect(events).toEqual([
      { type: 'text', text: 'Hm. ' },
      { type: 'tool_call', index: 0, id: 't1', name: 'get_weather' },
      { type: 'tool_arguments', index: 0, arguments: '{"city":' },
      { type: 'tool_arguments', index: 0, arguments: '"Paris"}' },
      { type: 'text', text: '{}' },
    ]);
    expect(reader.finishReason('tool_use')).toBe('tool_calls');
  });

  it('counts every input token, the cached ones named apart', () => {
    expect(converseUsage({ inputTokens: 10, outputTokens: 5, totalTokens: 1215, cacheReadInputTokens: 1200 })).toEqual({
      inputTokens: 1210,
      outputTokens: 5,
      cacheReadInputTokens: 1200,
    });
  });
});
