import { DOWNLOAD_URL_SECONDS, MAX_INLINE_CONTENT_BYTES, MAX_UPLOAD_BYTES } from '../../contract/files';
import { checkBatchLines, fileDownload, newFileId, uploadFile } from '../../lambdas/core/files';
import type { FileStore, StoredFile } from '../../lambdas/core/ports';
import { tenantContext } from '../support/tenant';

const line = (customId: string, url = '/v1/chat/completions') =>
  JSON.stringify({ custom_id: customId, method: 'POST', url, body: { model: 'nova-micro', messages: [] } });

/** A multipart form as a client sends it. */
async function formOf(fields: Record<string, string | Blob>, filename = 'input.jsonl') {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (value instanceof Blob) form.append(name, value, filename);
    else form.append(name, value);
  }
  const request = new Request('http://local/', { method: 'POST', body: form });
  return {
    bytes: new Uint8Array(await request.arrayBuffer()),
    contentType: request.headers.get('content-type') as string,
  };
}

describe('files', () => {
  const tenant = tenantContext('files-co');
  const stored: { file: Omit<StoredFile, 'bytes' | 'createdAt'>; body: Uint8Array }[] = [];
  const files = {
    put: async (_tenant: unknown, file: Omit<StoredFile, 'bytes' | 'createdAt'>, body: Uint8Array) => {
      stored.push({ file, body });
      return { ...file, bytes: body.byteLength, createdAt: 1 };
    },
  } as unknown as FileStore;
  const deps = { files, now: () => Date.UTC(2026, 11, 7) };

  it('stores a batch file under a new id, with its name, after checking every line', async () => {
    const text = `${line('a')}\n${line('b')}\n`;
    const file = await uploadFile(deps, tenant, await formOf({ purpose: 'batch', file: new Blob([text]) }));
    expect(file).toMatchObject({ filename: 'input.jsonl', purpose: 'batch', bytes: text.length });
    expect(file.id).toMatch(/^file-[a-z0-9]+$/);
    expect(new TextDecoder().decode(stored.at(-1)?.body)).toBe(text);
  });

  it.each([
    ['a line that is not JSON', `${line('a')}\n{oops`, 'line 2 is not JSON'],
    [
      'a line without custom_id',
      JSON.stringify({ method: 'POST', url: '/v1/embeddings', body: {} }),
      'line 1: custom_id',
    ],
    ['a repeated custom_id', `${line('a')}\n${line('b')}\n${line('a')}`, "line 3: custom_id 'a' is line 1's already"],
    ['two endpoints', `${line('a')}\n${line('b', '/v1/embeddings')}`, 'line 2: url /v1/embeddings differs'],
    ['an endpoint batches do not serve', line('a', '/v1/responses'), 'line 1: url'],
    ['a blank line', `${line('a')}\n\n${line('b')}`, 'line 2 is not JSON'],
  ])('refuses %s with a 400 naming the line', (_name, text, message) => {
    expect(() => checkBatchLines(text)).toThrow(expect.objectContaining({ code: 'invalid_request', status: 400 }));
    expect(() => checkBatchLines(text)).toThrow(message);
  });

  it('refuses a form without a batch purpose or a file, an empty file, bytes that are not UTF-8, and a form that is none', async () => {
    const refusal = async (form: { bytes: Uint8Array; contentType: string }) =>
      uploadFile(deps, tenant, form).then(
        () => 'stored',
        (error: { code: string; message: string }) => `${error.code}: ${error.message}`,
      );
    expect(await refusal(await formOf({ purpose: 'fine-tune', file: new Blob([line('a')]) }))).toMatch(
      /purpose must be/,
    );
    expect(await refusal(await formOf({ purpose: 'batch' }))).toMatch(/file is required/);
    expect(await refusal(await formOf({ purpose: 'batch', file: new Blob([]) }))).toMatch(/the file is empty/);
    expect(await refusal(await formOf({ purpose: 'batch', file: new Blob([new Uint8Array([0xff, 0xfe])]) }))).toMatch(
      /UTF-8/,
    );
    expect(
      await refusal({ bytes: new TextEncoder().encode('no form'), contentType: 'multipart/form-data; boundary=x' }),
    ).toMatch(/not a multipart form/);
  });

  it('reads a batch file that starts with a byte order mark', () => {
    expect(checkBatchLines(`\uFEFF${line('a')}\n${line('b')}`).map((row) => row.custom_id)).toEqual(['a', 'b']);
  });

  it("answers a file's content inline up to the limit, a larger one as the store's download URL, another tenant's as a 404", async () => {
    // GIVEN files at the limit and a byte past it, as the store lists them
    const sizes: Record<string, number> = {
      'file-inline': MAX_INLINE_CONTENT_BYTES,
      'file-large': MAX_INLINE_CONTENT_BYTES + 1,
    };
    const urlsAsked: [string, number][] = [];
    let deletedMeanwhile = false;
    const store = {
      get: async (_tenant: unknown, id: string) =>
        id in sizes ? { id, filename: 'f', purpose: 'batch_output', bytes: sizes[id], createdAt: 1 } : undefined,
      content: async (_tenant: unknown, id: string) => new Uint8Array(sizes[id]),
      downloadUrl: async (_tenant: unknown, id: string, seconds: number) => {
        urlsAsked.push([id, seconds]);
        return deletedMeanwhile ? undefined : `https://files.example/${id}`;
      },
    } as unknown as FileStore;
    const download = (id: string) => fileDownload({ files: store, now: deps.now }, tenant, id);

    // WHEN / THEN: every file an upload can make answers inline
    expect(MAX_UPLOAD_BYTES).toBeLessThanOrEqual(MAX_INLINE_CONTENT_BYTES);
    const inline = await download('file-inline');
    expect('bytes' in inline && inline.bytes.byteLength).toBe(MAX_INLINE_CONTENT_BYTES);
    expect(urlsAsked).toEqual([]);
    expect(await download('file-large')).toEqual({ url: 'https://files.example/file-large' });
    expect(urlsAsked).toEqual([['file-large', DOWNLOAD_URL_SECONDS]]);
    await expect(download('file-other')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    await expect(download('../file-large')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    deletedMeanwhile = true;
    await expect(download('file-large')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    expect(urlsAsked).toHaveLength(2);
  });

  it('makes ids that sort newest first', () => {
    const older = newFileId(Date.UTC(2026, 0, 1));
    const newer = newFileId(Date.UTC(2026, 11, 7));
    expect(newer < older).toBe(true);
  });
});
