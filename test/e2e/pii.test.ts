import { PII_ENTITIES } from '../../contract/safety';
import { platformConfig } from '../../lib/config';
import { call, onboard, startTestPlatform } from '../support/platform';

const SECRET = 'My SSN is 123-45-6789 and my mail is ana.lopez@example.com, please confirm.';
const chat = { model: 'nova-micro', messages: [{ role: 'user', content: SECRET }], max_tokens: 64 };

/** PII redaction before the shared model, over HTTP (the local model answers with what it read). */
describe('PII redaction', () => {
  // Enterprise answers get the values back; the other tiers keep the placeholders (the default).
  const base = platformConfig();
  const config = {
    ...base,
    piiRedaction: { ...base.piiRedaction, enterprise: { entities: [...PII_ENTITIES], patterns: [], restore: true } },
  };
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(config);
  });
  afterAll(() => platform.close());

  it('sends the model neither the SSN nor the email, answers with neither, and audits only the counts', async () => {
    const { apiKey } = await onboard(platform, 'private-co', { audit_prompts: true });
    const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(answer.status).toBe(200);
    const content = answer.body.choices[0].message.content as string;
    expect(content).toContain('[SSN_1]');
    expect(content).toContain('[EMAIL_1]');
    expect(answer.text).not.toMatch(/123-45-6789|ana\.lopez@example\.com/);
    const wire = JSON.stringify(platform.bedrock.requests.at(-1)?.body);
    expect(wire).not.toMatch(/123-45-6789|ana\.lopez/);
    expect(wire).toContain('My SSN is [SSN_1] and my mail is [EMAIL_1]');

    const requestId = answer.headers.get('x-request-id');
    const record = await call(platform, 'GET', `/v1/audit/${requestId}`, { credential: apiKey });
    expect(record.body.redacted).toEqual({ ssn: 1, email: 1 });
    expect(record.body.prompt).toContain('[SSN_1]');
    expect(record.text).not.toMatch(/123-45-6789|ana\.lopez/);
  });

  it('cleans what the shared embedding model reads too, while the tenant keeps its own text whole', async () => {
    const { apiKey } = await onboard(platform, 'embed-co');
    const embedded = await call(platform, 'POST', '/v1/embeddings', {
      credential: apiKey,
      body: { model: 'titan-embed-text-v2', input: 'Write to ana.lopez@example.com' },
    });
    expect(embedded.status).toBe(200);
    expect(platform.bedrock.requests.at(-1)?.body).toMatchObject({ inputText: 'Write to [EMAIL_1]' });

    await call(platform, 'POST', '/v1/documents', {
      credential: apiKey,
      body: { id: 'contact', text: 'Support answers at help.desk@example.com every weekday.' },
    });
    expect(JSON.stringify(platform.bedrock.requests.at(-1)?.body)).not.toContain('help.desk@example.com');
    const found = await call(platform, 'POST', '/v1/retrieve', {
      credential: apiKey,
      body: { query: 'when does support answer', top_k: 1 },
    });
    expect(found.body.data[0].text).toContain('help.desk@example.com');
  });

  it("applies a tenant's own policy instead of its tier's", async () => {
    const { apiKey } = await onboard(platform, 'ticket-co', {
      pii_redaction: { entities: [], patterns: [{ name: 'ticket', regex: 'TCK-\\d{4}' }], restore: false },
    });
    const answer = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { ...chat, messages: [{ role: 'user', content: 'Ticket TCK-1234 from ana.lopez@example.com' }] },
    });
    expect(answer.status).toBe(200);
    const wire = JSON.stringify(platform.bedrock.requests.at(-1)?.body);
    expect(wire).toContain('Ticket [TICKET_1] from ana.lopez@example.com');
  });

  it('gives a tier that restores its values back in the answer, streamed too; the model still never saw them', async () => {
    const { apiKey } = await onboard(platform, 'restore-co', { tier: 'enterprise' });
    const answer = await call(platform, 'POST', '/v1/chat/completions', { credential: apiKey, body: chat });
    expect(answer.body.choices[0].message.content).toContain('123-45-6789');
    expect(answer.body.choices[0].message.content).toContain('ana.lopez@example.com');
    expect(JSON.stringify(platform.bedrock.requests.at(-1)?.body)).not.toMatch(/123-45-6789|ana\.lopez/);

    const streamed = await call(platform, 'POST', '/v1/chat/completions', {
      credential: apiKey,
      body: { ...chat, stream: true },
    });
    const text = streamed.text
      .split('\n\n')
      .filter((line) => line.startsWith('data: {'))
      .map((line) => JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(text).toContain('123-45-6789');
    expect(text).toContain('ana.lopez@example.com');
    expect(text).not.toContain('[SSN_1]');
  });
});
