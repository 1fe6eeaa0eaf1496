import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockCallers } from '../../lambdas/adapters/bedrock-callers';
import { BedrockModelProvider } from '../../lambdas/adapters/bedrock-model-provider';
import type { TenantContext } from '../../lambdas/core/tenant';
import { countTokens } from '../../lambdas/core/tokens';
import { type LocalBedrockServer, startLocalBedrock } from '../../local/bedrock-server';

const tenant = {} as TenantContext;
const MODEL_ID = 'amazon.nova-micro-v1:0';

describe('BedrockModelProvider against the local Bedrock Runtime server', () => {
  let bedrock: LocalBedrockServer;
  let client: BedrockRuntimeClient;
  let provider: BedrockModelProvider;

  beforeAll(async () => {
    delete process.env.AWS_BEARER_TOKEN_BEDROCK;
    bedrock = await startLocalBedrock({ chatModelIds: [MODEL_ID], embeddingModelIds: [] });
    client = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: bedrock.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    provider = new BedrockModelProvider(new BedrockCallers(client));
  });
  afterAll(async () => {
    client.destroy();
    await bedrock.close();
  });

  it('sends a Converse request in the documented shape and reads usage from the response', async () => {
    // WHEN
    const result = await provider.generate(tenant, {
      modelId: MODEL_ID,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'user', content: 'there' },
        { role: 'assistant', content: 'Hello.' },
        { role: 'user', content: 'Bye now' },
      ],
      maxTokens: 64,
      temperature: 0.5,
    });

    // THEN the wire request is POST /model/{urlencoded modelId}/converse, SigV4-signed for bedrock
    const request = bedrock.requests.at(-1);
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/model/amazon.nova-micro-v1%3A0/converse');
    expect(request?.headers['content-type']).toBe('application/json');
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=test\/\d{8}\/us-east-1\/bedrock\/aws4_request, /,
    );
    // and its body has exactly the Converse fields: system blocks apart, alternating turns, inferenceConfig
    expect(request?.body).toEqual({
      system: [{ text: 'Be brief.' }],
      messages: [
        { role: 'user', content: [{ text: 'Hi' }, { text: 'there' }] },
        { role: 'assistant', content: [{ text: 'Hello.' }] },
        { role: 'user', content: [{ text: 'Bye now' }] },
      ],
      inferenceConfig: { maxTokens: 64, temperature: 0.5 },
    });
    // and the result carries the server's token counts and text
    expect(result.text).toBe('Local echo of 3 message(s): Bye now');
    expect(result.finishReason).toBe('stop');
    // the local model counts what it read (blocks of a turn joined by a newline) the platform's way
    expect(result.inputTokens).toBe(
      ['Be brief.', 'Hi\nthere', 'Hello.', 'Bye now'].reduce((sum, text) => sum + countTokens(text), 0),
    );
    expect(result.outputTokens).toBeGreaterThan(5);
  });

  it("caps OpenAI's temperature range (0-2) to Bedrock's (0-1)", async () => {
    await provider.generate(tenant, {
      modelId: MODEL_ID,
      messages: [{ role: 'user', content: 'x' }],
      maxTokens: 3,
      temperature: 1.7,
    });
    expect(bedrock.requests.at(-1)?.body).toMatchObject({ inferenceConfig: { maxTokens: 3, temperature: 1 } });
  });

  it('maps max_tokens to finish_reason length', async () => {
    const result = await provider.generate(tenant, {
      modelId: MODEL_ID,
      messages: [{ role: 'user', content: 'x' }],
      maxTokens: 3,
    });
    expect(result.finishReason).toBe('length');
    expect(result.outputTokens).toBeLessThanOrEqual(3);
    expect(result.outputTokens).toBe(countTokens(result.text));
  });

  it('turns provider errors into platform errors that name no model id', async () => {
    const failure = provider.generate(tenant, {
      modelId: 'secret-internal-model',
      messages: [{ role: 'user', content: 'x' }],
      maxTokens: 3,
    });
    // Bedrock's ValidationException: the request is refused as invalid, a 4xx
    await expect(failure).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(failure).rejects.not.toThrow(/secret-internal-model/);
  });

  it('refuses a conversation that does not start with a user turn before calling Bedrock', async () => {
    const before = bedrock.requests.length;
    await expect(
      provider.generate(tenant, { modelId: MODEL_ID, messages: [{ role: 'assistant', content: 'x' }], maxTokens: 3 }),
    ).rejects.toMatchObject({ code: 'invalid_request' });
    expect(bedrock.requests).toHaveLength(before);
  });
});
