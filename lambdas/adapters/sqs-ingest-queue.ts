import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { IngestJobRef, IngestQueue } from '../core/ports';

/**
 * Ingest jobs on SQS, one message each, holding ids only (the chunks wait in the documents table).
 * Each tenant is its own message group: SQS fair queues deliver across groups, so one tenant's
 * backlog does not hold back another tenant's jobs (the queue stays a standard queue).
 */
export class SqsIngestQueue implements IngestQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(jobs: readonly IngestJobRef[], options: { readonly delaySeconds?: number } = {}): Promise<void> {
    await Promise.all(
      jobs.map((job) =>
        this.client.send(
          new SendMessageCommand({
            QueueUrl: this.queueUrl,
            MessageBody: JSON.stringify(job),
            MessageGroupId: job.tenantId,
            ...(options.delaySeconds && { DelaySeconds: options.delaySeconds }),
          }),
        ),
      ),
    );
  }
}
