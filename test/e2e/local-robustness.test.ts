import { connect } from 'node:net';
import { call, onboard, startTestPlatform } from '../support/platform';

/**
 * The local stand-ins for AWS answer what they cannot read in their own protocol's error shape, and
 * a client that hangs up halfway through a request takes nothing down.
 */
describe('local servers under malformed input', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let apiKey: string;
  const chat = { model: 'nova-micro', messages: [{ role: 'user', content: 'still there?' }], max_tokens: 8 };

  beforeAll(async () => {
    platform = await startTestPlatform();
    ({ apiKey } = await onboard(platform, 'robust-co'));
  });
  afterAll(() => platform.close());

  const endpoints = () => {
    return {
      bedrock: platform.endpoints.bedrock,
      sts: platform.endpoints.sts,
      sqs: platform.endpoints.sqs,
      dynamodb: platform.endpoints.dynamodb,
      opensearch: platform.opensearch.endpoint,
      front: platform.url,
    };
  };

  /** Sends the head of a request that promises a body, half the body, then hangs up. */
  const hangUpMidBody = (endpoint: string) =>
    new Promise<void>((resolve) => {
      const { hostname, port } = new URL(endpoint);
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          'POST /model/x/converse HTTP/1.1\r\nhost: local\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"half":',
        );
        setImmediate(() => socket.destroy());
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });

  it.each([
    [
      'bedrock',
      (r: Response, text: string) => r.headers.get('x-amzn-errortype') !== null && 'message' in JSON.parse(text),
    ],
    ['sqs', (r: Response, text: string) => r.headers.get('x-amzn-errortype') !== null && 'message' in JSON.parse(text)],
    ['sts', (_r: Response, text: string) => text.startsWith('<ErrorResponse') && text.includes('<Code>')],
    ['dynamodb', (_r: Response, text: string) => '__type' in JSON.parse(text)],
    ['opensearch', (_r: Response, text: string) => typeof JSON.parse(text).error?.type === 'string'],
  ] as const)(
    '%s answers a request it cannot read with a 4xx in its own error shape',
    async (name, isProtocolError) => {
      for (const body of ['{"not json', '\u0000\u00ff', JSON.stringify({ Action: 'AssumeRole' }), '']) {
        const response = await fetch(`${endpoints()[name]}/`, {
          method: 'POST',
          headers: {
            'content-type': 'application/x-amz-json-1.0',
            'x-amz-target': 'Unknown.Operation',
            authorization:
              'AWS4-HMAC-SHA256 Credential=nobody/20261124/us-east-1/x/aws4_request, SignedHeaders=host, Signature=00',
          },
          body,
        });
        const text = await response.text();
        expect(response.status).toBeGreaterThanOrEqual(400);
        expect(response.status).toBeLessThan(500);
        expect(isProtocolError(response, text)).toBe(true);
      }
    },
  );

  it('survives clients that hang up halfway through a request, on every local port', async () => {
    for (const endpoint of Object.values(endpoints())) await hangUpMidBody(endpoint);
    // everything still answers: the tenant chats (front, STS, DynamoDB, Bedrock) and searches (OpenSearch)
    expect((await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat })).status).toBe(200);
    const retrieve = await call(platform, 'POST', '/v1/retrieve', { credential: apiKey, body: { query: 'anything' } });
    expect(retrieve.status).toBe(200);
  });

  it('answers a malformed token request of the dev issuer with 400', async () => {
    const response = await call(platform, 'POST', '/local/tokens', {
      credential: platform.operatorToken,
      rawBody: '{"tenant_id": ',
    });
    expect(response.status).toBe(400);
  });
});
