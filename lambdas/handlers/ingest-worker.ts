import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { BATCH_ID_PATTERN } from '../../contract/files';
import * as z from '../../contract/zod';
import { runBatchStep } from '../core/batches';
import { indexQueuedJob } from '../core/documents';
import { modelCallBudgetMs } from '../core/metering';
import { principalSchema, tenantIdSchema } from '../core/tenant';
import {
  batches,
  documents,
  lambdaHandler,
  ledger,
  metrics,
  modelDeps,
  type PlatformDeps,
  registry,
  responseCache,
  sessions,
  tenantAdapters,
  tenantPrompts,
} from '../runtime';
import { adapterModels } from '../runtime-adapter-models';
import { contentGuardrail, embedder, models } from '../runtime-bedrock';
import { batchInference } from '../runtime-bedrock-control';
import { fileStore } from '../runtime-s3';
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

const batchJobRefSchema = z.strictObject({
  kind: z.literal('batch'),
  tenantId: tenantIdSchema,
  batchId: z.string().check(z.regex(BATCH_ID_PATTERN)),
});

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type IngestWorkerDeps = Pick<
  PlatformDeps,
  | 'settings'
  | 'registry'
  | 'ledger'
  | 'metrics'
  | 'embedder'
  | 'vectors'
  | 'documents'
  | 'queue'
  | 'now'
  | 'models'
  | 'adapterModels'
  | 'adapters'
  | 'prompts'
  | 'sessions'
  | 'cache'
  | 'contentGuardrail'
  | 'files'
  | 'batches'
  | 'batchInference'
>;

/**
 * SQS worker of the plane's work queue. Large documents: embeds and indexes each job with the
 * tenant's scoped credentials (a suspended tenant's jobs it queues again, delayed, until the tenant
 * is back). Batches: runs a batch's next step (`runBatchStep`), which queues the one after.
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
          const job = JSON.parse(record.body) as { kind?: unknown };
          if (job.kind === 'batch') {
            const ref = batchJobRefSchema.parse(job);
            logger.appendKeys({ tenantId: ref.tenantId, batchId: ref.batchId });
            const outcome = await runBatchStep(retrieval, ref, () => context.getRemainingTimeInMillis());
            if (outcome.includes(':')) logger.info('batch step dropped', { messageId: record.messageId, outcome });
            continue;
          }
          const signal = AbortSignal.timeout(modelCallBudgetMs(context.getRemainingTimeInMillis()));
          const ref = ingestJobRefSchema.parse(job);
          logger.appendKeys({ tenantId: ref.tenantId, requestId: ref.requestId });
          const outcome = await indexQueuedJob(retrieval, ref, signal);
          if (outcome !== 'indexed') logger.info('ingest job dropped', { messageId: record.messageId, outcome });
        } catch (error) {
          logger.error('ingest job failed', { messageId: record.messageId, error: error as Error });
          batchItemFailures.push({ itemIdentifier: record.messageId });
        } finally {
          logger.removeKeys(['tenantId', 'requestId', 'batchId']);
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
    models: models(wiring),
    adapterModels: adapterModels(wiring),
    adapters: tenantAdapters(wiring),
    prompts: tenantPrompts(wiring),
    sessions: sessions(wiring),
    cache: responseCache(wiring),
    contentGuardrail: contentGuardrail(wiring),
    files: fileStore(wiring),
    batches: batches(wiring),
    ...(wiring.settings.batchInferenceRoleArn && { batchInference: batchInference(wiring) }),
  }),
);
