import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { type AIMessageChunk, type BaseMessage, HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool as langchainTool } from '@langchain/core/tools';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import {
  Agent,
  tool as agentTool,
  run,
  setDefaultOpenAIClient,
  setOpenAIAPI,
  setTracingDisabled,
} from '@openai/agents';
import { tool as aiTool, generateObject, generateText, type LanguageModel, stepCountIs, streamText } from 'ai';
import OpenAI from 'openai';
import * as z from 'zod';
import { call, onboard, startTestPlatform } from '../support/platform';

/**
 * Stock agent clients, unmodified but for their base URL, against the local platform: an agent
 * loop (model, tool call, tool result, answer) and a structured output through each, on the bill
 * exactly as answered. The Python clients (openai, langchain-openai, openai-agents) run the same
 * steps from `examples/clients/`, by hand: CI reaches no Python package index.
 */
describe('agent clients, only their base URL changed', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  let baseURL: string;
  const question = 'What is the weather in Paris?';
  const weather = z.object({ city: z.string(), temp_c: z.number() });
  const structuredPrompt = 'Weather in Paris';
  /** Every call's prompt and completion tokens as the answers reported them, and the ledger's. */
  const billed = async () => (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body.totals;

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, 'clients-co', { tier: 'standard' }));
    baseURL = `${platform.url}/v1`;
  });
  afterAll(() => platform.close());

  describe('LangChain JS ChatOpenAI', () => {
    const getWeather = langchainTool(async ({ city }) => JSON.stringify({ temp_c: 21, city }), {
      name: 'get_weather',
      description: 'Get the current weather for a city',
      schema: z.object({ city: z.string() }),
    });
    const llm = () => new ChatOpenAI({ model: 'nova-micro', apiKey, configuration: { baseURL }, maxRetries: 0 });

    async function agentLoop(ask: (messages: BaseMessage[]) => Promise<AIMessageChunk>) {
      const messages: BaseMessage[] = [new HumanMessage(question)];
      for (let turn = 0; turn < 3; turn++) {
        const answer = await ask(messages);
        messages.push(answer);
        if (!answer.tool_calls?.length) return { answer, messages };
        for (const toolCall of answer.tool_calls) {
          const result = await getWeather.invoke(toolCall.args as { city: string });
          messages.push(new ToolMessage({ content: result, tool_call_id: toolCall.id ?? '' }));
        }
      }
      throw new Error('no answer after 3 turns');
    }

    it('runs the agent loop with bindTools, buffered and streamed, billed as answered', async () => {
      const before = await billed();
      const withTools = llm().bindTools([getWeather]);
      const buffered = await agentLoop((messages) => withTools.invoke(messages));
      expect(buffered.messages[1]).toMatchObject({ tool_calls: [{ name: 'get_weather', args: { city: 'Paris' } }] });
      expect(buffered.answer.content).toBe(
        'Local answer from 1 tool result(s): get_weather said {"temp_c":21,"city":"Paris"}',
      );
      const after = await billed();
      const reported = buffered.messages.map((m) => (m as AIMessageChunk).usage_metadata?.input_tokens ?? 0);
      expect(after.input_tokens - before.input_tokens).toBe(reported.reduce((sum, tokens) => sum + tokens, 0));

      const streamed = await agentLoop(async (messages) => {
        let whole: AIMessageChunk | undefined;
        for await (const chunk of await withTools.stream(messages)) whole = whole ? whole.concat(chunk) : chunk;
        return whole as AIMessageChunk;
      });
      expect(streamed.answer.content).toBe(buffered.answer.content);
    });

    it.each(['jsonSchema', 'functionCalling'] as const)('answers withStructuredOutput (%s)', async (method) => {
      const report = await llm().withStructuredOutput(weather, { name: 'weather', method }).invoke(structuredPrompt);
      expect(report).toEqual({ city: 'Paris', temp_c: 1 });
    });

    it('embeds with OpenAIEmbeddings', async () => {
      const embeddings = new OpenAIEmbeddings({ model: 'titan-embed-text-v2', apiKey, configuration: { baseURL } });
      expect(await embeddings.embedQuery('Hello world')).toHaveLength(1024);
    });
  });

  describe.each([
    ['chat completions', 'chat_completions'],
    ['the Responses API, its default model', 'responses'],
  ] as const)('OpenAI Agents SDK (JS) on %s', (_name, api) => {
    let toolCalls = 0;
    const getWeather = agentTool({
      name: 'get_weather',
      description: 'Get the current weather for a city',
      parameters: z.object({ city: z.string() }),
      execute: async ({ city }) => {
        toolCalls++;
        return JSON.stringify({ temp_c: 21, city });
      },
    });

    beforeAll(() => {
      setDefaultOpenAIClient(new OpenAI({ baseURL, apiKey, maxRetries: 0 }) as never);
      setOpenAIAPI(api);
      setTracingDisabled(true);
    });

    it('runs an agent with a function tool to its final answer, and streamed', async () => {
      const agent = new Agent({
        name: 'Weather',
        instructions: 'Use the tool.',
        model: 'nova-micro',
        tools: [getWeather],
      });
      const result = await run(agent, question);
      expect(toolCalls).toBe(1);
      expect(result.finalOutput).toBe(
        'Local answer from 1 tool result(s): get_weather said {"temp_c":21,"city":"Paris"}',
      );

      const streamed = await run(agent, question, { stream: true });
      for await (const _event of streamed) {
        // drained: the SDK assembles the streamed tool calls and runs the tool
      }
      await streamed.completed;
      expect(toolCalls).toBe(2);
      expect(streamed.finalOutput).toBe(result.finalOutput);
    });

    it('answers an outputType schema', async () => {
      const agent = new Agent({ name: 'Reporter', instructions: 'Report.', model: 'nova-micro', outputType: weather });
      const result = await run(agent, structuredPrompt);
      expect(weather.parse(result.finalOutput)).toEqual(result.finalOutput);
    });
  });

  describe('Vercel AI SDK', () => {
    let toolCalls = 0;
    const tools = {
      get_weather: aiTool({
        description: 'Get the current weather for a city',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          toolCalls++;
          return { temp_c: 21, city };
        },
      }),
    };
    const providers: [string, () => LanguageModel][] = [
      // The default provider: the Responses API.
      ['openai (Responses API)', () => createOpenAI({ baseURL, apiKey })('nova-micro')],
      ['openai .chat()', () => createOpenAI({ baseURL, apiKey }).chat('nova-micro')],
      [
        'openai-compatible',
        () =>
          createOpenAICompatible({ name: 'platform', baseURL, apiKey, supportsStructuredOutputs: true }).chatModel(
            'nova-micro',
          ),
      ],
    ];

    it.each(providers)('runs the agent loop with %s: generateText and streamText with tools', async (_name, model) => {
      toolCalls = 0;
      const buffered = await generateText({ model: model(), tools, stopWhen: stepCountIs(3), prompt: question });
      expect(toolCalls).toBe(1);
      expect(buffered.text).toBe('Local answer from 1 tool result(s): get_weather said {"temp_c":21,"city":"Paris"}');
      const streamed = streamText({ model: model(), tools, stopWhen: stepCountIs(3), prompt: question });
      let text = '';
      for await (const delta of streamed.textStream) text += delta;
      expect(toolCalls).toBe(2);
      expect(text).toBe(buffered.text);
    });

    it('continues a conversation with the default provider, its earlier answer sent back as an item reference', async () => {
      const model = createOpenAI({ baseURL, apiKey })('nova-micro');
      const first = await generateText({ model, prompt: 'My name is Ada.' });
      const next = await generateText({
        model,
        messages: [
          { role: 'user', content: 'My name is Ada.' },
          ...first.response.messages,
          { role: 'user', content: 'What is my name?' },
        ],
      });
      expect(next.text).toBe('Local echo of 3 message(s): What is my name?');
    });

    it.each(providers)('answers generateObject with %s', async (_name, model) => {
      const { object } = await generateObject({
        model: model(),
        schema: weather,
        schemaName: 'weather',
        prompt: structuredPrompt,
      });
      expect(object).toEqual({ city: 'Paris', temp_c: 1 });
    });
  });
});
