import type { APIGatewayProxyResult } from 'aws-lambda';
import {
  batchCreateSchema,
  batchListQuerySchema,
  batchView,
  cancelBatch,
  createBatch,
  getBatch,
  listBatches,
} from '../core/batches';
import { deleteDocument, documentView, getDocument, ingestDocument } from '../core/documents';
import { PlatformError } from '../core/errors';
import {
  deleteFile,
  fileDownload,
  fileListQuerySchema,
  fileView,
  getFile,
  isUploadedForm,
  listFiles,
  uploadFile,
} from '../core/files';
import { pageQuerySchema } from '../core/paging';
import { documentRequestSchema } from '../core/retrieval';
import { batches, documents, lambdaHandler, modelDeps, type PlatformDeps } from '../runtime';
import { meteredRoutePorts } from '../runtime-bedrock';
import { fileStore } from '../runtime-s3';
import { queue } from '../runtime-sqs';
import { vectors } from '../runtime-vectors';
import { type ApiEvent, json, listPage, type TenantApiContext, tenantApi } from './http';
import { lambdaFunction } from './lambda';

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type DocumentsDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'audit'
  | 'now'
  | 'ledger'
  | 'metrics'
  | 'embedder'
  | 'vectors'
  | 'documents'
  | 'queue'
  | 'files'
  | 'batches'
>;

/**
 * `POST /v1/documents`, `GET /v1/documents`, `GET` and `DELETE /v1/documents/{id}`, and OpenAI's
 * files (`/v1/files...`) and batches (`/v1/batches...`): the caller's own only.
 */
export function create(deps: DocumentsDeps) {
  const retrieval = modelDeps(deps);
  const id = (event: ApiEvent) => event.pathParameters?.id ?? '';
  const operations: Record<string, (event: ApiEvent, context: TenantApiContext) => Promise<APIGatewayProxyResult>> = {
    'POST /v1/documents': async (event, { tenant, modelCall, audit }) => {
      audit.model = deps.settings.retrieval.embeddingModel;
      const record = await ingestDocument(retrieval, tenant, documentRequestSchema.parse(event.body), modelCall);
      audit.inputTokens = record.tokens;
      return json(record.status === 'queued' ? 202 : 201, documentView(record));
    },
    'GET /v1/documents': async (event, { tenant }) => {
      const page = await deps.documents.list(tenant, pageQuerySchema.parse(event.queryStringParameters ?? {}));
      return listPage(page.records.map(documentView), page.nextCursor);
    },
    'GET /v1/documents/{id}': async (event, { tenant }) =>
      json(200, documentView(await getDocument(deps, tenant, id(event)))),
    'DELETE /v1/documents/{id}': async (event, { tenant }) => json(200, await deleteDocument(deps, tenant, id(event))),
    // OpenAI's files API, for batches' input and output: the caller's own files only.
    'POST /v1/files': async (event, { tenant }) => {
      if (!isUploadedForm(event.body)) {
        throw new PlatformError(
          'invalid_request',
          'upload a file as multipart/form-data, with fields file and purpose',
        );
      }
      return json(200, fileView(await uploadFile(deps, tenant, event.body)));
    },
    'GET /v1/files': async (event, { tenant }) =>
      json(200, await listFiles(deps, tenant, fileListQuerySchema.parse(event.queryStringParameters ?? {}))),
    'GET /v1/files/{id}': async (event, { tenant }) => json(200, fileView(await getFile(deps, tenant, id(event)))),
    'GET /v1/files/{id}/content': async (event, { tenant }): Promise<APIGatewayProxyResult> => {
      const download = await fileDownload(deps, tenant, id(event));
      // A URL is the tenant's for minutes only: no cache keeps it.
      if ('url' in download)
        return { statusCode: 307, headers: { location: download.url, 'cache-control': 'no-store' }, body: '' };
      return {
        statusCode: 200,
        // Batch files are UTF-8 text (checked at upload, written so by the batch runner).
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from(download.bytes).toString('utf8'),
      };
    },
    'DELETE /v1/files/{id}': async (event, { tenant }) => json(200, await deleteFile(deps, tenant, id(event))),
    // OpenAI's batches: run off the request path by the work queue's worker.
    'POST /v1/batches': async (event, { tenant, audit }) =>
      json(200, batchView(await createBatch(retrieval, tenant, batchCreateSchema.parse(event.body), audit))),
    'GET /v1/batches': async (event, { tenant }) =>
      json(200, await listBatches(deps, tenant, batchListQuerySchema.parse(event.queryStringParameters ?? {}))),
    'GET /v1/batches/{id}': async (event, { tenant }) => json(200, batchView(await getBatch(deps, tenant, id(event)))),
    'POST /v1/batches/{id}/cancel': async (event, { tenant }) =>
      json(200, batchView(await cancelBatch(deps, tenant, id(event)))),
  };
  return lambdaFunction(
    tenantApi(deps).handler(async (event, context) => {
      const operation = operations[`${event.httpMethod} ${event.resource}`];
      if (!operation) throw new PlatformError('not_found', 'no such route');
      return operation(event, context);
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    ...meteredRoutePorts(wiring),
    vectors: vectors(wiring),
    documents: documents(wiring),
    queue: queue(wiring),
    files: fileStore(wiring),
    batches: batches(wiring),
  }),
);
