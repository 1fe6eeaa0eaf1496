import { hashSecret, issueApiKey, parseApiKey, secretMatches } from '../../lambdas/core/api-key';

describe('tenant API keys', () => {
  it('issues mt_<keyId>_<secret> and keeps only the hash', () => {
    const issued = issueApiKey();
    expect(issued.apiKey).toMatch(/^mt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const parsed = parseApiKey(issued.apiKey);
    expect(parsed?.keyId).toBe(issued.keyId);
    expect(issued.secretHash).toBe(hashSecret(parsed?.secret ?? ''));
    expect(issued.apiKey).not.toContain(issued.secretHash);
  });

  it('matches only the exact secret', () => {
    const issued = issueApiKey();
    const secret = parseApiKey(issued.apiKey)?.secret ?? '';
    expect(secretMatches(secret, issued.secretHash)).toBe(true);
    expect(secretMatches(`${secret.slice(0, -1)}${secret.endsWith('x') ? 'y' : 'x'}`, issued.secretHash)).toBe(false);
    expect(secretMatches(secret, 'abcd')).toBe(false);
  });

  it('rejects truncated and malformed keys', () => {
    const { apiKey } = issueApiKey();
    expect(parseApiKey(apiKey.slice(0, -1))).toBeUndefined();
    expect(parseApiKey(`${apiKey}x`)).toBeUndefined();
    expect(parseApiKey('mt__')).toBeUndefined();
  });
});
