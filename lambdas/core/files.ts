import {
  BATCH_ENDPOINTS,
  DOWNLOAD_URL_SECONDS,
  FILE_ID_PATTERN,
  MAX_BATCH_LINES,
  MAX_FORM_BYTES,
  MAX_INLINE_CONTENT_BYTES,
  MAX_UPLOAD_BYTES,
} from '../../contract/files';
import * as z from '../../contract/zod';
import { PlatformError } from './errors';
import { cursorPage, newestFirstId } from './paging';
import type { FileStore, StoredFile } from './ports';
import type { TenantContext } from './tenant';

/** A `multipart/form-data` upload as the HTTP layer hands it on: its bytes, and its content type (with the boundary). */
export interface UploadedForm {
  readonly bytes: Uint8Array;
  readonly contentType: string;
}

/** Whether a request's body is an upload (a JSON body never holds bytes). */
export function isUploadedForm(body: unknown): body is UploadedForm {
  return typeof body === 'object' && body !== null && (body as UploadedForm).bytes instanceof Uint8Array;
}

export interface FileDeps {
  readonly files: FileStore;
  readonly now: () => number;
}

/** OpenAI's `file` object. */
export function fileView(file: StoredFile) {
  return {
    id: file.id,
    object: 'file' as const,
    bytes: file.bytes,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed' as const,
    status_details: null,
  };
}

/** `GET /v1/files`: `limit` (1 to 1,000, default 100) and `after` (a file id: the page after it). */
export const fileListQuerySchema = z.strictObject({
  limit: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(1_000)), 100),
  after: z.optional(z.string().check(z.regex(FILE_ID_PATTERN, 'after is a file id'))),
  purpose: z.optional(z.enum(['batch', 'batch_output'])),
});

/** A file id, sorting newest first (`newestFirstId`). */
export function newFileId(nowMs: number): string {
  return newestFirstId('file-', nowMs);
}

/**
 * `POST /v1/files`: a `batch` file (JSONL, each line a request of the batch API, checked line by
 * line, an error naming the line), stored under the tenant's own prefix.
 */
export async function uploadFile(deps: FileDeps, tenant: TenantContext, form: UploadedForm): Promise<StoredFile> {
  if (form.bytes.byteLength > MAX_FORM_BYTES) throw tooLarge();
  let fields: FormData;
  try {
    fields = await new Response(form.bytes, { headers: { 'content-type': form.contentType } }).formData();
  } catch {
    throw new PlatformError('invalid_request', 'the upload is not a multipart form: send fields file and purpose');
  }
  const purpose = fields.get('purpose');
  if (purpose !== 'batch') {
    throw new PlatformError('invalid_request', "purpose must be 'batch' (the only purpose files are kept for)");
  }
  const file = fields.get('file');
  if (!(file instanceof Blob)) throw new PlatformError('invalid_request', 'file is required: the form field file');
  if (file.size > MAX_UPLOAD_BYTES) throw tooLarge();
  if (file.size === 0) throw new PlatformError('invalid_request', 'the file is empty');
  const bytes = new Uint8Array(await file.arrayBuffer());
  checkBatchLines(decodeUtf8(bytes));
  // A name is the caller's text, kept as given (an object key encodes it), but never a path's dot segment.
  // Cut at 255 UTF-16 units, never inside a character: half of one is no text (its key cannot encode it).
  const given = (file as File).name.slice(0, 255).replace(/[\uD800-\uDBFF]$/, '');
  const filename = given === '' || given === '.' || given === '..' ? 'batch.jsonl' : given;
  return deps.files.put(tenant, { id: newFileId(deps.now()), filename, purpose }, bytes);
}

const tooLarge = () => new PlatformError('payload_too_large', `a file holds at most ${MAX_UPLOAD_BYTES} bytes`);

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PlatformError('invalid_request', 'a batch file is UTF-8 text (JSON lines)');
  }
}

/** One line of a batch input file, as OpenAI's batch API defines it. */
const batchLineSchema = z.strictObject({
  custom_id: z.string().check(z.minLength(1), z.maxLength(512)),
  method: z.literal('POST'),
  url: z.enum(BATCH_ENDPOINTS),
  body: z.record(z.string(), z.unknown()),
});
export type BatchLine = z.infer<typeof batchLineSchema>;

/**
 * The lines of a batch file, each a JSON request of one endpoint with a `custom_id` of its own;
 * any line that is not is a 400 naming it (and the first line of a repeated `custom_id`).
 */
export function checkBatchLines(text: string): BatchLine[] {
  // A leading byte order mark is not JSON, but some editors write one (JSON bodies allow it too).
  const rows = (text.startsWith('\uFEFF') ? text.slice(1) : text).split('\n').map((row) => row.replace(/\r$/, ''));
  if (rows.at(-1) === '') rows.pop();
  if (rows.length > MAX_BATCH_LINES) {
    throw new PlatformError(
      'invalid_request',
      `a batch file holds at most ${MAX_BATCH_LINES} lines, not ${rows.length}`,
    );
  }
  const seen = new Map<string, number>();
  let endpoint: string | undefined;
  return rows.map((row, index) => {
    const at = `line ${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch {
      throw new PlatformError('invalid_request', `${at} is not JSON`);
    }
    const parsed = batchLineSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      throw new PlatformError('invalid_request', `${at}: ${where}${issue.message}`);
    }
    const line = parsed.data;
    const earlier = seen.get(line.custom_id);
    if (earlier !== undefined) {
      throw new PlatformError('invalid_request', `${at}: custom_id '${line.custom_id}' is line ${earlier}'s already`);
    }
    seen.set(line.custom_id, index + 1);
    endpoint ??= line.url;
    if (line.url !== endpoint) {
      throw new PlatformError(
        'invalid_request',
        `${at}: url ${line.url} differs from line 1's: a batch calls one endpoint`,
      );
    }
    return line;
  });
}

/** The tenant's file `id`; another tenant's, or none, is a 404 alike. */
export async function getFile(deps: FileDeps, tenant: TenantContext, id: string): Promise<StoredFile> {
  const file = FILE_ID_PATTERN.test(id) ? await deps.files.get(tenant, id) : undefined;
  if (!file) throw new PlatformError('not_found', `no file '${id.slice(0, 80)}'`);
  return file;
}

/** The bytes of the tenant's file `id`. */
export async function fileContent(deps: FileDeps, tenant: TenantContext, id: string): Promise<Uint8Array> {
  const content = FILE_ID_PATTERN.test(id) ? await deps.files.content(tenant, id) : undefined;
  if (!content) throw new PlatformError('not_found', `no file '${id.slice(0, 80)}'`);
  return content;
}

/**
 * `GET /v1/files/{id}/content`: the bytes of a file small enough to answer inline, or else a URL
 * that reads it from the store (a Lambda's answer could not hold it).
 */
export async function fileDownload(
  deps: FileDeps,
  tenant: TenantContext,
  id: string,
): Promise<{ readonly bytes: Uint8Array } | { readonly url: string }> {
  const file = await getFile(deps, tenant, id);
  if (file.bytes <= MAX_INLINE_CONTENT_BYTES) return { bytes: await fileContent(deps, tenant, id) };
  const url = await deps.files.downloadUrl(tenant, id, DOWNLOAD_URL_SECONDS);
  // Deleted since it was read.
  if (!url) throw new PlatformError('not_found', `no file '${id.slice(0, 80)}'`);
  return { url };
}

/** `DELETE /v1/files/{id}`: OpenAI's deletion answer. */
export async function deleteFile(deps: FileDeps, tenant: TenantContext, id: string) {
  const deleted = FILE_ID_PATTERN.test(id) && (await deps.files.delete(tenant, id));
  if (!deleted) throw new PlatformError('not_found', `no file '${id.slice(0, 80)}'`);
  return { id, object: 'file' as const, deleted: true };
}

/** `GET /v1/files`: OpenAI's cursor page, newest first. */
export async function listFiles(deps: FileDeps, tenant: TenantContext, query: z.infer<typeof fileListQuerySchema>) {
  // A page the purpose filters empty is read past, so `has_more` always comes with a cursor.
  let page: Awaited<ReturnType<FileStore['list']>>;
  let files: StoredFile[] = [];
  let after = query.after;
  do {
    page = await deps.files.list(tenant, { limit: query.limit, after });
    files = page.files.filter((file) => !query.purpose || file.purpose === query.purpose);
    after = page.files.at(-1)?.id;
  } while (files.length === 0 && page.hasMore);
  return cursorPage(files.map(fileView), page.hasMore);
}
