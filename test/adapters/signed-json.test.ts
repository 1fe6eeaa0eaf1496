import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { sigV4Headers } from '../../lambdas/adapters/signed-json';

/** The lean transport's SigV4 against the SDK's own signer: the same headers, byte for byte. */
describe('sigV4Headers', () => {
  const now = new Date('2026-12-07T18:30:12.345Z');
  const cases: {
    service: string;
    region: string;
    host: string;
    path: string;
    headers: Record<string, string>;
    body: string;
    credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  }[] = [
    {
      service: 'dynamodb',
      region: 'us-east-1',
      host: 'dynamodb.localhost',
      path: '/',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.PutItem' },
      body: '{"TableName":"t","Item":{"pk":{"S":"é"}}}',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' },
    },
    {
      service: 'bedrock',
      region: 'us-east-1',
      host: '127.0.0.1:8850',
      path: `/prefix/model/${encodeURIComponent("us.amazon.nova-micro-v1:0 (it's)")}/converse`,
      headers: { 'content-type': 'application/json' },
      body: '{"messages":[]}',
      credentials: { accessKeyId: 'AKID2', secretAccessKey: 'other' },
    },
    {
      service: 'bedrock',
      region: 'eu-west-1',
      host: 'bedrock-runtime.localhost',
      path: '/guardrail/g-1/version/DRAFT/./x/../apply/',
      headers: { 'content-type': 'application/json' },
      body: '',
      credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' },
    },
  ];

  it.each(cases)('signs a $service POST to $path as SignatureV4 does', async (request) => {
    const { region } = request;
    const signer = new SignatureV4({
      credentials: request.credentials,
      region,
      service: request.service,
      sha256: Hash.bind(null, 'sha256'),
    });
    const [hostname, port] = request.host.split(':');
    const expected = await signer.sign(
      {
        method: 'POST',
        protocol: 'https:',
        hostname,
        port: port ? Number(port) : undefined,
        path: request.path,
        headers: { ...request.headers, host: request.host },
        body: request.body,
      },
      { signingDate: now },
    );
    // Twice: the second from the signing key's cache.
    for (let i = 0; i < 2; i++) {
      expect(sigV4Headers(request, request.credentials, { region, service: request.service }, now)).toEqual(
        expected.headers,
      );
    }
  });
});
