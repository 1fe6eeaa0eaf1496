import { SQSClient } from '@aws-sdk/client-sqs';
import { SqsIngestQueue } from './adapters/sqs-ingest-queue';
import type { IngestQueue } from './core/ports';
import { built } from './runtime';

/** The ingest queue (SQS): only the handlers that queue or take ingest jobs import this module. */
export const queue = /* @__PURE__ */ built(
  (wiring): IngestQueue => new SqsIngestQueue(new SQSClient(wiring.services.sqs), wiring.settings.ingestQueueUrl),
);
