import { BEDROCK_BATCH_MIN_RECORDS, jobOutputLine, jobPlan, jobRecord } from '../../lambdas/core/batch-jobs';
import { atBatchPrices, costNanoUsd } from '../../lambdas/core/catalog';
import type { BatchLine } from '../../lambdas/core/files';
import { DEFAULT_MODELS } from '../../lib/config';
import { tenantContext } from '../support/tenant';

const catalog = atBatchPrices(DEFAULT_MODELS);
const tenant = tenantContext('jobs-co');
const chatLine = (i: number, body: Record<string, unknown> = {}): BatchLine => ({
  custom_id: `c-${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: 'nova-micro', messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 20, ...body },
});
const many = (count: number, body?: Record<string, unknown>) =>
  Array.from({ length: count }, (_, i) => chatLine(i, body));

describe('a batch as one Bedrock batch inference job', () => {
  it('runs as a job only when every line is plain, for one model with batch prices, and there are enough lines', () => {
    expect(jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS))).toMatchObject({
      format: 'nova',
      model: { name: 'nova-micro', bedrockModelId: 'amazon.nova-micro-v1:0' },
    });
    // Under Bedrock's least records, a tool, a structured output, two models, a stream, a route of the tenant's own.
    expect(jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS - 1))).toBeUndefined();
    const withTools = many(BEDROCK_BATCH_MIN_RECORDS);
    withTools[7] = chatLine(7, { tools: [{ type: 'function', function: { name: 'f', parameters: {} } }] });
    expect(jobPlan({ catalog }, tenant, withTools)).toBeUndefined();
    expect(
      jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS, { response_format: { type: 'json_object' } })),
    ).toBeUndefined();
    const twoModels = many(BEDROCK_BATCH_MIN_RECORDS);
    twoModels[3] = chatLine(3, { model: 'nova-lite' });
    expect(jobPlan({ catalog }, tenant, twoModels)).toBeUndefined();
    expect(jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS, { stream: true }))).toBeUndefined();
    const routed = {
      ...tenant,
      routing: { 'nova-micro': { targets: [{ model: 'nova-lite' }], on: ['throttled' as const], retries: 0 } },
    };
    expect(jobPlan({ catalog }, routed, many(BEDROCK_BATCH_MIN_RECORDS))).toBeUndefined();
    // A model without batch prices runs on demand.
    const { batchInputUsdPerMillionTokens: _, ...noBatch } = catalog['nova-micro'] as Record<string, unknown>;
    const withoutBatchPrices = { ...catalog, 'nova-micro': noBatch } as unknown as typeof catalog;
    expect(jobPlan({ catalog: withoutBatchPrices }, tenant, many(100))).toBeUndefined();
  });

  it("runs no job whose model's records answer another endpoint than the batch's", () => {
    // Each line fails on demand (its body is not the endpoint's): as a job, each would be answered and billed.
    const asEmbeddings = many(BEDROCK_BATCH_MIN_RECORDS).map((line) => ({ ...line, url: '/v1/embeddings' as const }));
    expect(jobPlan({ catalog }, tenant, asEmbeddings)).toBeUndefined();
    const asChat = many(BEDROCK_BATCH_MIN_RECORDS).map((line) => ({
      ...line,
      body: { model: 'titan-embed-text-v2', input: 'a text' },
    }));
    expect(jobPlan({ catalog }, tenant, asChat)).toBeUndefined();
  });

  it("reads a chat line into Nova's record, its text cleaned of PII, and refuses what the guardrail blocks", async () => {
    const plan = jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS));
    if (!plan) throw new Error('no plan');
    const line = chatLine(4, {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Mail jane@example.com about it' },
      ],
      temperature: 0.2,
      stop: 'END',
    });
    const policy = { entities: ['email' as const], patterns: [], restore: false };
    const piiRedaction = { basic: policy, standard: policy, enterprise: policy };
    const read = await jobRecord({ catalog, piiRedaction }, tenant, plan, line, 4);
    expect('record' in read && JSON.parse(read.record)).toEqual({
      recordId: '4',
      modelInput: {
        schemaVersion: 'messages-v1',
        system: [{ text: 'Be brief.' }],
        messages: [{ role: 'user', content: [{ text: expect.not.stringContaining('jane@example.com') }] }],
        inferenceConfig: { maxTokens: 20, temperature: 0.2, stopSequences: ['END'] },
      },
    });
    const guardrail = { id: 'g', version: '1' };
    const blocking = {
      catalog,
      guardrails: { basic: guardrail, standard: guardrail, enterprise: guardrail },
      contentGuardrail: { assess: async () => ['topic:secrets'] },
    };
    const refused = await jobRecord(blocking, tenant, plan, line, 4);
    expect('failure' in refused && refused.failure).toMatchObject({ code: 'content_blocked', status: 400 });
    const tooLong = await jobRecord({ catalog }, tenant, plan, chatLine(5, { max_tokens: 999_999 }), 5);
    expect('failure' in tooLong && tooLong.failure.message).toMatch(/max_tokens must be at most 5000/);
  });

  it("holds a chat line's temperature to Nova's range, as the live route does", async () => {
    const plan = jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS));
    if (!plan) throw new Error('no plan');
    // OpenAI's runs to 2: Bedrock refuses a Nova record above 1, where the live route answers it.
    const read = await jobRecord({ catalog }, tenant, plan, chatLine(2, { temperature: 1.5 }), 2);
    expect('record' in read && JSON.parse(read.record).modelInput.inferenceConfig).toEqual({
      maxTokens: 20,
      temperature: 1,
    });
  });

  it('reads an embeddings line as the live route embeds it: cleaned of PII, not screened by the guardrail', async () => {
    const embedLine = (i: number): BatchLine => ({
      custom_id: `e-${i}`,
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'titan-embed-text-v2', input: `text ${i} of jane@example.com` },
    });
    const lines = Array.from({ length: BEDROCK_BATCH_MIN_RECORDS }, (_, i) => embedLine(i));
    const plan = jobPlan({ catalog }, tenant, lines);
    if (!plan) throw new Error('no plan');
    const policy = { entities: ['email' as const], patterns: [], restore: false };
    const guardrail = { id: 'g', version: '1' };
    const deps = {
      catalog,
      piiRedaction: { basic: policy, standard: policy, enterprise: policy },
      guardrails: { basic: guardrail, standard: guardrail, enterprise: guardrail },
      contentGuardrail: { assess: async () => ['topic:secrets'] },
    };
    const read = await jobRecord(deps, tenant, plan, lines[3], 3);
    expect('record' in read && JSON.parse(read.record)).toEqual({
      recordId: '3',
      modelInput: { inputText: 'text 3 of [EMAIL_1]', dimensions: 1024 },
    });
  });

  it('puts the redacted values back into the answer when the tier restores them, as the live route does', async () => {
    const plan = jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS));
    if (!plan) throw new Error('no plan');
    const policy = { entities: ['email' as const], patterns: [], restore: true };
    const piiRedaction = { basic: policy, standard: policy, enterprise: policy };
    const line = chatLine(4, { messages: [{ role: 'user', content: 'Write to jane@example.com' }] });
    const read = await jobRecord({ catalog, piiRedaction }, tenant, plan, line, 4);
    const sent = 'record' in read ? JSON.parse(read.record).modelInput.messages[0].content[0].text : '';
    expect(sent).toBe('Write to [EMAIL_1]');
    const row = JSON.stringify({
      recordId: '4',
      modelInput: {},
      modelOutput: {
        output: { message: { role: 'assistant', content: [{ text: 'Dear [EMAIL_1],' }] } },
        stopReason: 'end_turn',
        usage: { inputTokens: 5, outputTokens: 4 },
      },
    });
    const answered = await jobOutputLine(
      { catalog, piiRedaction },
      tenant,
      plan,
      line,
      row,
      { requestId: 'r-4', created: 5 },
      (response) => JSON.stringify({ response }),
    );
    expect(JSON.parse(answered.output).response.body.choices[0].message.content).toBe('Dear jane@example.com,');
  });

  it("answers a record of the job's output as the live route's answer, billed at the batch price", async () => {
    const plan = jobPlan({ catalog }, tenant, many(BEDROCK_BATCH_MIN_RECORDS));
    if (!plan) throw new Error('no plan');
    const row = JSON.stringify({
      recordId: '4',
      modelInput: {},
      modelOutput: {
        output: { message: { role: 'assistant', content: [{ text: 'Sure.' }] } },
        stopReason: 'max_tokens',
        usage: { inputTokens: 11, outputTokens: 20, totalTokens: 31 },
      },
    });
    const outputLine = (response: unknown) => JSON.stringify({ custom_id: 'c-4', response });
    const answered = await jobOutputLine(
      { catalog },
      tenant,
      plan,
      chatLine(4),
      row,
      { requestId: 'r-4', created: 5 },
      outputLine,
    );
    expect(answered.ok).toBe(true);
    expect(JSON.parse(answered.output).response).toMatchObject({
      status_code: 200,
      body: {
        object: 'chat.completion',
        model: 'nova-micro',
        choices: [{ message: { content: 'Sure.' }, finish_reason: 'length' }],
        usage: { prompt_tokens: 11, completion_tokens: 20 },
      },
    });
    // Half of nova-micro's on-demand price: 0.0175 and 0.07 USD per million tokens.
    expect(answered.used).toEqual([
      {
        model: 'nova-micro',
        requests: 1,
        inputTokens: 11,
        outputTokens: 20,
        costNanoUsd: costNanoUsd(plan.model, 11, 20),
      },
    ]);
    expect(costNanoUsd(plan.model, 11, 20)).toBe(Math.round((11 * 17_500 + 20 * 70_000) / 1000));
    // A record Bedrock could not run fails, unbilled; an answer the guardrail refuses fails, billed.
    const failed = JSON.stringify({
      recordId: '4',
      modelInput: {},
      error: { errorCode: 400, errorMessage: 'bad input' },
    });
    const notRun = await jobOutputLine(
      { catalog },
      tenant,
      plan,
      chatLine(4),
      failed,
      { requestId: 'r', created: 5 },
      outputLine,
    );
    expect(notRun).toMatchObject({ ok: false, used: [] });
    expect(JSON.parse(notRun.output).response.status_code).toBe(400);
    const guardrail = { id: 'g', version: '1' };
    const blocking = {
      catalog,
      guardrails: { basic: guardrail, standard: guardrail, enterprise: guardrail },
      contentGuardrail: { assess: async () => ['topic:secrets'] },
    };
    const refused = await jobOutputLine(
      blocking,
      tenant,
      plan,
      chatLine(4),
      row,
      { requestId: 'r', created: 5 },
      outputLine,
    );
    expect(refused).toMatchObject({
      ok: false,
      used: [expect.objectContaining({ inputTokens: 11, outputTokens: 20 })],
    });
  });
});
