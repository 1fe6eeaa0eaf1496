import { Logger } from '@aws-lambda-powertools/logger';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { z } from 'zod';
import { indexQueuedJob } from '../core/documents';
import { principalSchema, tenantIdSchema } from '../core/tenant';
import { lambdaHandler, modelDeps, type PlatformDeps } from '../runtime';

const logger = new Logger({ serviceName: 'ingest-worker' });

const ingestJobRefSchema = z.object({
  tenantId: tenantIdSchema,
  principal: principalSchema,
  documentId: z.string().min(1),
  version: z.string().min(1),
  requestId: z.string().min(1),
  batch: z.number().int().nonnegative(),
});

/**
 * SQS worker for large documents: embeds and indexes each job with the tenant's scoped credentials.
 * A failed job is reported back alone (partial batch response), so SQS retries it and then moves
 * it to the dead-letter queue, while the rest of the batch is done.
 */
export function create(deps: PlatformDeps) {
  const retrieval = modelDeps(deps);
  return middy<SQSEvent, SQSBatchResponse>().handler(async (event) => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records) {
      try {
        const outcome = await indexQueuedJob(retrieval, ingestJobRefSchema.parse(JSON.parse(record.body)));
        if (outcome !== 'indexed') logger.info('ingest job dropped', { messageId: record.messageId, outcome });
      } catch (error) {
        logger.error('ingest job failed', { messageId: record.messageId, error: error as Error });
        batchItemFailures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures };
  });
}

export const handler = lambdaHandler(create);
