import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from '../../contract/zod';
import { indexQueuedJob } from '../core/documents';
import { modelCallBudgetMs } from '../core/metering';
import { principalSchema, tenantIdSchema } from '../core/tenant';
import { documents, lambdaHandler, ledger, metrics, modelDeps, type PlatformDeps, registry } from '../runtime';
import { embedder } from '../runtime-bedrock';
import { queue } from '../runtime-sqs';
import { vectors } from '../runtime-vectors';
import { lambdaFunction } from './lambda';
import { logger } from './logger';

const ingestJobRefSchema = z.object({
  tenantId: tenantIdSchema,
  principal: principalSchema,
  documentId: z.string().check(z.minLength(1)),
  version: z.string().check(z.minLength(1)),
  requestId: z.string().check(z.minLength(1)),
  batch: z.number().check(z.int(), z.nonnegative()),
  pauses: z.optional(z.number().check(z.int(), z.nonnegative(), z.lte(1000))),
});

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type IngestWorkerDeps = Pick<
  PlatformDeps,
  'settings' | 'registry' | 'ledger' | 'metrics' | 'embedder' | 'vectors' | 'documents' | 'queue' | 'now'
>;

/**
 * SQS worker for large documents: embeds and indexes each job with the tenant's scoped credentials
 * (a suspended tenant's jobs it queues again, delayed, until the tenant is back).
 * A failed job is reported back alone (partial batch response), so SQS retries it and then moves
 * it to the dead-letter queue, while the rest of the batch is done.
 */
export function create(deps: IngestWorkerDeps) {
  const retrieval = { ...modelDeps(deps), siloTenantId: deps.settings.siloTenantId };
  return lambdaFunction(
    middy<SQSEvent, SQSBatchResponse>().handler(async (event, context) => {
      const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
      for (const record of event.Records) {
        try {
          // Each job's model call ends while there is still time to settle it and report the batch.
          const signal = AbortSignal.timeout(modelCallBudgetMs(context.getRemainingTimeInMillis()));
          const ref = ingestJobRefSchema.parse(JSON.parse(record.body));
          logger.appendKeys({ tenantId: ref.tenantId, requestId: ref.requestId });
          const outcome = await indexQueuedJob(retrieval, ref, signal);
          if (outcome !== 'indexed') logger.info('ingest job dropped', { messageId: record.messageId, outcome });
        } catch (error) {
          logger.error('ingest job failed', { messageId: record.messageId, error: error as Error });
          batchItemFailures.push({ itemIdentifier: record.messageId });
        } finally {
          logger.removeKeys(['tenantId', 'requestId']);
        }
      }
      return { batchItemFailures };
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({
    settings: wiring.settings,
    registry: registry(wiring),
    ledger: ledger(wiring),
    metrics: metrics(wiring),
    embedder: embedder(wiring),
    vectors: vectors(wiring),
    documents: documents(wiring),
    queue: queue(wiring),
    now: Date.now,
  }),
);
