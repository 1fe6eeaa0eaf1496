import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from 'aws-lambda';
import { createApiKey, onboardTenant } from '../../lambdas/core/tenants';
import { create, tenantRoutesArn } from '../../lambdas/handlers/authorizer';
import type { LocalPlatform } from '../../local/platform';
import { startTestPlatform } from '../support/platform';
import { forgedTokens } from '../support/tokens';

const METHOD_ARN = 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/v1/chat/completions';

describe('tenant authorizer (production handler, registry on dynalite, JWKS of the dev issuer)', () => {
  let platform: LocalPlatform;
  let authorize: (header?: string) => Promise<APIGatewayAuthorizerResult>;
  let acmeKey: string;

  beforeAll(async () => {
    platform = await startTestPlatform();
    const admin = {
      ...platform.deps,
      tiers: platform.deps.settings.tiers,
      vectorStores: platform.deps.settings.retrieval.vectorStores,
    };
    await onboardTenant(admin, { id: 'acme', tier: 'standard', audit_prompts: false });
    acmeKey = (await createApiKey(admin, 'acme')).api_key;
    await platform.deps.registry.createTenant({
      tenantId: 'frozen',
      version: 1,
      tier: 'basic',
      status: 'suspended',
      limits: admin.tiers.basic,
      auditPrompts: false,
      placements: [],
      createdAt: new Date().toISOString(),
    });
    const handler = create(platform.deps);
    authorize = (header) =>
      handler(
        {
          type: 'REQUEST',
          methodArn: METHOD_ARN,
          headers: header ? { Authorization: header } : {},
        } as APIGatewayRequestAuthorizerEvent,
        {} as Context,
      );
  });
  afterAll(() => platform.close());

  it('turns an API key into an Allow for every tenant route of the stage, with the tenant context', async () => {
    const result = await authorize(`Bearer ${acmeKey}`);
    expect(result.policyDocument.Statement).toEqual([
      {
        Action: 'execute-api:Invoke',
        Effect: 'Allow',
        Resource: 'arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/v1/*',
      },
    ]);
    expect(result.context).toMatchObject({ tenantId: 'acme', tier: 'standard', principalType: 'api_key' });
    expect(JSON.parse(String(result.context?.limits))).toMatchObject({ requestsPerMinute: 600 });
  });

  it('turns a JWT of the configured issuer into the tenant and user', async () => {
    const token = await platform.issuer.mint({ tenantId: 'acme', userId: 'alice' });
    const result = await authorize(`Bearer ${token}`);
    expect(result.principalId).toBe('alice');
    expect(result.context).toMatchObject({ tenantId: 'acme', principalType: 'user', principalId: 'alice' });
  });

  it('denies (403) a suspended tenant, saying why and nothing of the tenant beyond that', async () => {
    const token = await platform.issuer.mint({ tenantId: 'frozen', userId: 'bob' });
    const result = await authorize(`Bearer ${token}`);
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: 'Deny' });
    expect(result.context).toEqual({ denyReason: ": tenant 'frozen' is suspended" });
  });

  it.each([
    ['no header', undefined],
    ['empty bearer', 'Bearer '],
    ['basic auth', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l'],
    ['garbage', 'Bearer not-a-token'],
  ])('answers Unauthorized (401) for %s', async (_, header) => {
    await expect(authorize(header)).rejects.toThrow(/^Unauthorized$/);
  });

  it('answers Unauthorized for API keys that are truncated, altered or unknown', async () => {
    const [, keyId, secret] = /^mt_([^_]+)_(.+)$/.exec(acmeKey) ?? [];
    for (const key of [
      acmeKey.slice(0, -2),
      `mt_${keyId}_${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`,
      `mt_0000000000000000_${secret}`,
    ]) {
      await expect(authorize(`Bearer ${key}`)).rejects.toThrow(/^Unauthorized$/);
    }
  });

  it('answers Unauthorized for a JWT of an unknown tenant', async () => {
    const token = await platform.issuer.mint({ tenantId: 'ghost', userId: 'alice' });
    await expect(authorize(`Bearer ${token}`)).rejects.toThrow(/^Unauthorized$/);
  });

  it('answers Unauthorized for every forged token', async () => {
    const forged = await forgedTokens(platform.issuer, 'acme');
    expect(Object.keys(forged)).toHaveLength(10);
    for (const [name, token] of Object.entries(forged)) {
      await expect(authorize(`Bearer ${token}`).then(() => name)).rejects.toThrow(/^Unauthorized$/);
    }
  });

  it('derives the cached resource from any method ARN of the stage', () => {
    expect(tenantRoutesArn('arn:aws:execute-api:us-east-1:1:api/stage/GET/v1/usage')).toBe(
      'arn:aws:execute-api:us-east-1:1:api/stage/*/v1/*',
    );
  });
});
