import OpenAI, { toFile } from 'openai';
import { ManualClock, offboardCompletely, onboard, startTestPlatform } from '../support/platform';

/** OpenAI's files API through the official SDK, each tenant's files under its own prefix of the plane's bucket. */
describe('files', () => {
  const clock = new ManualClock();
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let acme: OpenAI;
  let globex: OpenAI;
  let acmeKey: string;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now });
    ({ apiKey: acmeKey } = await onboard(platform, 'files-acme'));
    const { apiKey: globexKey } = await onboard(platform, 'files-globex');
    acme = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: acmeKey, maxRetries: 0 });
    globex = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: globexKey, maxRetries: 0 });
  });
  afterAll(() => platform.close());

  const lines = Array.from({ length: 3 }, (_, i) =>
    JSON.stringify({
      custom_id: `request-${i}`,
      method: 'POST',
      url: '/v1/chat/completions',
      body: { model: 'nova-micro', messages: [{ role: 'user', content: `Question ${i}` }], max_tokens: 16 },
    }),
  ).join('\n');

  it('uploads, lists, reads and deletes a batch file with the stock SDK, and shows it to no other tenant', async () => {
    const created = await acme.files.create({
      file: await toFile(Buffer.from(lines), 'questions.jsonl'),
      purpose: 'batch',
    });
    expect(created).toMatchObject({
      object: 'file',
      filename: 'questions.jsonl',
      purpose: 'batch',
      bytes: lines.length,
    });
    const second = await acme.files.create({ file: await toFile(Buffer.from(lines), 'again.jsonl'), purpose: 'batch' });

    const listed = [];
    for await (const file of acme.files.list({ limit: 1 })) listed.push(file.id);
    // Newest first, one page at a time.
    expect(listed).toEqual([second.id, created.id]);
    expect(await acme.files.retrieve(created.id)).toMatchObject({ id: created.id, filename: 'questions.jsonl' });
    expect(await (await acme.files.content(created.id)).text()).toBe(lines);
    // A file this small is in the answer itself, no redirect.
    const inline = await fetch(`${platform.url}/v1/files/${created.id}/content`, {
      headers: { authorization: `Bearer ${acmeKey}` },
      redirect: 'manual',
    });
    expect([inline.status, inline.headers.get('location'), await inline.text()]).toEqual([200, null, lines]);

    // Another tenant: the id names nothing, and its own list is empty.
    await expect(globex.files.retrieve(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.files.content(created.id)).rejects.toMatchObject({ status: 404 });
    await expect(globex.files.delete(created.id)).rejects.toMatchObject({ status: 404 });
    expect((await globex.files.list()).data).toEqual([]);

    expect(await acme.files.delete(second.id)).toEqual({ id: second.id, object: 'file', deleted: true });
    await expect(acme.files.retrieve(second.id)).rejects.toMatchObject({ status: 404 });
  });

  it('refuses a file whose lines are not batch requests with a 400 naming the line, and a file past 4 MiB with a 413', async () => {
    const broken = `${lines}\n{"custom_id": "request-0", "method": "POST", "url": "/v1/chat/completions", "body": {}}`;
    const refused = await acme.files
      .create({ file: await toFile(Buffer.from(broken), 'broken.jsonl'), purpose: 'batch' })
      .catch((error: { status: number; message: string }) => error);
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as { message: string }).message).toMatch(/line 4: custom_id 'request-0' is line 1's already/);
    const huge = Buffer.alloc(5 * 1024 * 1024, 'a');
    const tooLarge = await acme.files
      .create({ file: await toFile(huge, 'huge.jsonl'), purpose: 'batch' })
      .catch((error: { status: number }) => error);
    expect(tooLarge).toMatchObject({ status: 413 });
  });

  it('keeps a long name cut to 255 characters well formed when the cut falls inside a character (not a 500)', async () => {
    // The 255th UTF-16 unit is the first half of the emoji: a cut there leaves half a character.
    const name = `${'a'.repeat(254)}\u{1F600}.jsonl`;
    const created = await acme.files.create({ file: await toFile(Buffer.from(lines), name), purpose: 'batch' });
    expect(created.filename).toBe('a'.repeat(254));
    expect(await acme.files.retrieve(created.id)).toMatchObject({ filename: 'a'.repeat(254) });
  });

  it("deletes a tenant's files when it is offboarded", async () => {
    const { apiKey } = await onboard(platform, 'files-leaving');
    const leaving = new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
    await leaving.files.create({ file: await toFile(Buffer.from(lines), 'left.jsonl'), purpose: 'batch' });
    const tombstone = await offboardCompletely(platform, clock, 'files-leaving');
    expect(tombstone.offboarding.deleted.files).toBe(1);
  });
});
