import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { converse } from '../../lambdas/adapters/bedrock-wire';
import { type LocalBedrockServer, startLocalBedrock } from '../../local/bedrock-server';

/**
 * `Converse` through the lean transport, against the local Bedrock (which speaks its REST-JSON
 * protocol): the SDK client's region, endpoint and credentials, the output as the SDK answers it,
 * Bedrock's errors by name, and the signal ending a call as an `AbortError`.
 */
describe('converse through the lean transport', () => {
  let bedrock: LocalBedrockServer;
  let client: BedrockRuntimeClient;
  beforeAll(async () => {
    bedrock = await startLocalBedrock({ chatModelIds: ['amazon.nova-micro-v1:0'], embeddingModelIds: [] });
    client = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: bedrock.endpoint,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
    });
  });
  afterAll(() => bedrock.close());

  it('answers as the SDK does, signed for bedrock at the client’s endpoint', async () => {
    const before = bedrock.requests.length;
    const output = await converse(client, {
      modelId: 'amazon.nova-micro-v1:0',
      messages: [{ role: 'user', content: [{ text: 'hello there' }] }],
      inferenceConfig: { maxTokens: 16 },
    });
    expect(output.stopReason).toBeDefined();
    expect(output.output?.message?.content?.[0]?.text).toMatch(/^Local echo/);
    expect(output.usage).toMatchObject({ inputTokens: expect.any(Number), outputTokens: expect.any(Number) });
    const [sent] = bedrock.requests.slice(before);
    expect(decodeURIComponent(sent.path)).toBe('/model/amazon.nova-micro-v1:0/converse');
    expect(sent.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=test\/\d{8}\/us-east-1\/bedrock\/aws4_request/,
    );
  });

  it('throws Bedrock’s errors by name, and an aborted call as an AbortError', async () => {
    const refused = await converse(client, {
      modelId: 'no.such-model',
      messages: [{ role: 'user', content: [{ text: 'hi' }] }],
    }).catch((error: unknown) => error);
    expect(refused).toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } });
    const aborted = await converse(
      client,
      { modelId: 'amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'hi' }] }] },
      AbortSignal.abort(),
    ).catch((error: unknown) => error);
    expect(aborted).toMatchObject({ name: 'AbortError' });
  });

  it('sends a Buffer’s bytes as base64, as the SDK does, not as its toJSON object', async () => {
    const before = bedrock.requests.length;
    await converse(client, {
      modelId: 'amazon.nova-micro-v1:0',
      messages: [
        {
          role: 'user',
          content: [{ text: 'what is this?' }, { image: { format: 'png', source: { bytes: Buffer.from([1, 2, 3]) } } }],
        },
      ],
    }).catch(() => undefined);
    const [sent] = bedrock.requests.slice(before);
    expect(sent.body).toMatchObject({ messages: [{ content: [{}, { image: { source: { bytes: 'AQID' } } }] }] });
  });

  it('tries again after a 429 as the SDK does: ModelNotReadyException is retryable by its trait', async () => {
    let tries = 0;
    const flaky = createServer((request, response) => {
      request.resume().on('end', () => {
        tries++;
        if (tries === 1) {
          response.writeHead(429, {
            'content-type': 'application/json',
            'x-amzn-errortype': 'ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/',
          });
          response.end(JSON.stringify({ message: 'Model is not ready for inference' }));
        } else {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ output: { message: { role: 'assistant', content: [{ text: 'ok' }] } } }));
        }
      });
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    jest.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const output = await converse(
        new BedrockRuntimeClient({
          region: 'us-east-1',
          endpoint: `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`,
          credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
          requestHandler: new NodeHttpHandler(),
        }),
        { modelId: 'amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'hi' }] }] },
      );
      expect(output.output?.message?.content?.[0]?.text).toBe('ok');
      expect(tries).toBe(2);
    } finally {
      jest.restoreAllMocks();
      flaky.close();
    }
  });

  it('keeps the path of a custom endpoint before the operation’s, as the SDK does', async () => {
    const before = bedrock.requests.length;
    const behindPrefix = new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: `${bedrock.endpoint}/bedrock`,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      requestHandler: new NodeHttpHandler(),
    });
    await converse(behindPrefix, {
      modelId: 'amazon.nova-micro-v1:0',
      messages: [{ role: 'user', content: [{ text: 'hi' }] }],
    }).catch(() => undefined);
    const [sent] = bedrock.requests.slice(before);
    expect(sent.path).toBe('/bedrock/model/amazon.nova-micro-v1%3A0/converse');
  });
});
