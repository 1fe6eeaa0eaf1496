import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fillerText } from '../support/text';

/**
 * `npm start` killed with SIGKILL right after it acknowledged writes, then started again on the
 * same data directory: everything it acknowledged is there. The platform runs as a child process,
 * exactly as `npm start` runs it; the test waits on its own output and on HTTP answers, never on a
 * timer.
 */
describe('local mode loses nothing it acknowledged', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'platform-crash-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  /** Starts `bin/local.ts` and resolves with its URL once it says it is listening. */
  async function start(env: Record<string, string> = {}): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bin/local.ts'], {
      env: {
        ...process.env,
        PORT: '0',
        LOCAL_DATA_DIR: dataDir,
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const found = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(line);
        if (found) resolve(found[1]);
      });
      child.once('exit', (code) => reject(new Error(`the platform exited (${code}) before it listened`)));
    });
    return { child, url };
  }

  async function kill(child: ChildProcess): Promise<void> {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  const request = async (url: string, method: string, path: string, credential: string, body?: unknown) => {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    // biome-ignore lint/suspicious/noExplicitAny: answers of several routes, checked field by field
    return { status: response.status, body: (await response.json()) as any };
  };

  it('keeps tenants, keys, usage, indexed and queued documents across a kill -9', async () => {
    // the first run takes jobs but does not work them, so the kill finds them queued
    const first = await start({ LOCAL_INGEST_WORKER: 'off' });
    const { readFileSync } = await import('node:fs');
    const operator = readFileSync(join(dataDir, 'operator-token'), 'utf8').trim();
    expect(
      (await request(first.url, 'POST', '/admin/tenants', operator, { id: 'durable-co', tier: 'standard' })).status,
    ).toBe(201);
    const apiKey = (await request(first.url, 'POST', '/admin/tenants/durable-co/api-keys', operator)).body.api_key;
    const chat = await request(first.url, 'POST', '/v1/chat/completions', apiKey, {
      model: 'nova-micro',
      messages: [{ role: 'user', content: 'remember me' }],
      max_tokens: 16,
    });
    expect(chat.status).toBe(200);
    const small = await request(first.url, 'POST', '/v1/documents', apiKey, {
      id: 'small',
      text: 'The lighthouse keeper logs every passing ship.',
    });
    expect(small.status).toBe(201);
    const queued = await request(first.url, 'POST', '/v1/documents', apiKey, {
      id: 'large',
      text: fillerText(80 * 160, 'tundra'),
    });
    expect(queued.status).toBe(202);
    // killed right after the acknowledgements
    await kill(first.child);
    const journal = readFileSync(join(dataDir, 'ingest-queue.journal'), 'utf8').trim().split('\n');
    expect(journal.map((line) => JSON.parse(line).op)).toEqual(['send', 'send', 'send']);

    const second = await start();
    try {
      expect((await request(second.url, 'GET', '/v1/usage', apiKey)).body.totals).toMatchObject({
        input_tokens: expect.any(Number),
      });
      const usage = (await request(second.url, 'GET', '/v1/usage?group_by=model', apiKey)).body.data;
      expect(usage.find((line: { model: string }) => line.model === 'nova-micro')).toMatchObject({
        requests: 1,
        input_tokens: chat.body.usage.prompt_tokens,
        output_tokens: chat.body.usage.completion_tokens,
      });
      const hits = (await request(second.url, 'POST', '/v1/retrieve', apiKey, { query: 'lighthouse keeper' })).body
        .data;
      expect(hits[0]).toMatchObject({ document_id: 'small' });
      // the queued document's jobs were journaled before the 202: the restarted worker finishes them
      let status = queued.body;
      for (let i = 0; i < 600 && status.status !== 'indexed'; i++) {
        status = (await request(second.url, 'GET', '/v1/documents/large', apiKey)).body;
        if (status.status !== 'indexed') await new Promise((resolve) => setImmediate(resolve));
      }
      expect(status).toMatchObject({ status: 'indexed', indexed_chunks: queued.body.chunks });
      const tundra = (await request(second.url, 'POST', '/v1/retrieve', apiKey, { query: 'tundra', top_k: 50 })).body
        .data;
      expect(tundra.filter((p: { document_id: string }) => p.document_id === 'large').length).toBeGreaterThan(10);
    } finally {
      await kill(second.child);
    }
  }, 120_000);
});
