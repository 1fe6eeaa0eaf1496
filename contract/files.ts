/**
 * The largest file `POST /v1/files` takes. A synchronous Lambda invocation carries at most 6 MB, and
 * API Gateway passes a multipart upload on as base64 (4 bytes for 3): 4 MiB of file, with its form.
 */
export const MAX_UPLOAD_BYTES = 4 * 1024 * 1024;

/**
 * The largest file `GET /v1/files/{id}/content` answers in its body; a larger one (a batch's output,
 * which the platform writes, not the caller, may be far larger) is a `307` to a presigned S3 URL. A
 * synchronous Lambda answers at most 6 MB, its body as text (the file, and the answer's envelope).
 */
export const MAX_INLINE_CONTENT_BYTES = 4 * 1024 * 1024;

/** How long a file's presigned download URL is valid: the client follows it at once. */
export const DOWNLOAD_URL_SECONDS = 5 * 60;

/** An upload's form: a file of at most `MAX_UPLOAD_BYTES`, and its fields and boundaries. */
export const MAX_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 1024;

/** The content types API Gateway passes on as bytes (base64), not text: a file upload's form. */
export const BINARY_MEDIA_TYPES = ['multipart/form-data'] as const;

/** A file's id: `file-` and lower-case letters and digits (the platform makes them, sorting newest first). */
export const FILE_ID_PATTERN = /^file-[a-z0-9]{1,64}$/;

/** The routes a batch's lines may call: each line's `url`, the same for every line of a file. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/embeddings'] as const;

/** The most lines a batch input file holds (OpenAI's limit). */
export const MAX_BATCH_LINES = 50_000;

/** A batch's id: `batch_` and lower-case letters and digits (the platform makes them, sorting newest first). */
export const BATCH_ID_PATTERN = /^batch_[a-z0-9]{1,64}$/;
