import OpenAI from 'openai';
import { platformConfig } from '../../lib/config';
import { localEmbedding } from '../../local/local-embedder';
import { call, onboard, startTestPlatform } from '../support/platform';

/** The last gaps between the OpenAI SDK's calls and the platform, closed: each as the SDK makes it. */
describe('OpenAI compatibility', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let client: OpenAI;
  let apiKey: string;
  const lastConverse = () => platform.bedrock.requests.findLast((r) => r.path.endsWith('/converse'))?.body;

  beforeAll(async () => {
    // A GPU endpoint whose base model has no tool-call parser: its models cannot call tools.
    const config = platformConfig(
      (key) => ({ adapterInstanceType: 'ml.g5.2xlarge', adapterBaseModel: 'meta-llama/Llama-3.1-8B-Instruct' })[key],
    );
    platform = await startTestPlatform(config);
    ({ apiKey } = await onboard(platform, 'compat-co', { tier: 'standard' }));
    client = new OpenAI({ apiKey, baseURL: `${platform.url}/v1`, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  it('retrieves a model by id; one the caller may not use is a 404', async () => {
    expect(await client.models.retrieve('nova-micro')).toEqual({
      id: 'nova-micro',
      object: 'model',
      created: 0,
      owned_by: 'platform',
    });
    await expect(client.models.retrieve('ft:qwen2.5-7b:someone-elses')).rejects.toMatchObject({ status: 404 });
    await expect(client.models.retrieve('gpt-4o')).rejects.toMatchObject({ status: 404 });
  });

  it('authenticates before routing: a bad credential is a 401 on any path, a good one learns a path does not exist', async () => {
    for (const path of ['/v1/no/such/route', '/v1/models', '/v1/files']) {
      const refused = await call(platform, 'GET', path, { credential: 'mt_bad_credential' });
      expect([path, refused.status, refused.body.error.code]).toEqual([path, 401, 'unauthenticated']);
    }
    const unknown = await call(platform, 'POST', '/v1/no/such/route', { credential: apiKey, body: {} });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'not_found', message: 'no such route' });
  });

  it('takes the developer role as system, max_completion_tokens, and records user and metadata in the audit record', async () => {
    const completion = await client.chat.completions.create({
      model: 'nova-micro',
      messages: [
        { role: 'developer', content: 'Be brief.' },
        { role: 'user', content: 'Hello there' },
      ],
      max_completion_tokens: 7,
      user: 'end-user-42',
      metadata: { feature: 'support-bot' },
      store: true,
      service_tier: 'auto',
    });
    expect(lastConverse()).toMatchObject({ system: [{ text: 'Be brief.' }], inferenceConfig: { maxTokens: 7 } });
    const audit = await call(platform, 'GET', `/v1/audit/${completion.id.replace(/^chatcmpl-/, '')}`, {
      credential: apiKey,
    });
    expect(audit.body).toMatchObject({ user: 'end-user-42', metadata: { feature: 'support-bot' } });
  });

  it('embeds token-id input as the text the ids stand for (cl100k_base), one list or several', async () => {
    const hello = [9906, 1917]; // "Hello world"
    const one = await client.embeddings.create({
      model: 'titan-embed-text-v2',
      input: hello,
      encoding_format: 'float',
    });
    expect(one.data[0].embedding).toEqual(localEmbedding('Hello world', 1024).embedding);
    const several = await client.embeddings.create({
      model: 'titan-embed-text-v2',
      input: [hello, [9906]],
      encoding_format: 'float',
    });
    expect(several.data.map((d) => d.embedding)).toEqual([
      localEmbedding('Hello world', 1024).embedding,
      localEmbedding('Hello', 1024).embedding,
    ]);
    const gap = await call(platform, 'POST', '/v1/embeddings', {
      credential: apiKey,
      body: { model: 'titan-embed-text-v2', input: [100256] },
    });
    expect(gap.status).toBe(400);
    expect(gap.body.error.message).toBe('input: a token id is not one of cl100k_base');
  });

  it('refuses tools for a model that cannot call them, naming the model', async () => {
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: {
        model: 'qwen2.5-7b',
        messages: [{ role: 'user', content: 'Weather in Paris?' }],
        tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toBe("model 'qwen2.5-7b' cannot call tools: omit tools and response_format");
  });
});
