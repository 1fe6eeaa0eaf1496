import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Tenant API keys look like `mt_<keyId>_<secret>`; only the SHA-256 of the secret is stored. */
const API_KEY = /^mt_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_ID = /^[A-Za-z0-9]{16}$/;

/** Whether `keyId` can name a key at all: anything else is not looked up (nor made a table key). */
export function isKeyId(keyId: string): boolean {
  return KEY_ID.test(keyId);
}

export interface IssuedApiKey {
  readonly keyId: string;
  /** The full key, shown to the caller once and never stored. */
  readonly apiKey: string;
  readonly secretHash: string;
}

export function isApiKey(credential: string): boolean {
  return credential.startsWith('mt_');
}

export function parseApiKey(credential: string): { keyId: string; secret: string } | undefined {
  const match = API_KEY.exec(credential);
  return match ? { keyId: match[1], secret: match[2] } : undefined;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const actual = Buffer.from(hashSecret(secret), 'hex');
  const expected = Buffer.from(storedHash, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function issueApiKey(): IssuedApiKey {
  const keyId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { keyId, apiKey: `mt_${keyId}_${secret}`, secretHash: hashSecret(secret) };
}
