import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { IngestJob, IngestQueue } from '../ports';

/** Ingest jobs on SQS, one message each (a job of 32 chunks stays far below the message size limit). */
export class SqsIngestQueue implements IngestQueue {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async enqueue(jobs: readonly IngestJob[]): Promise<void> {
    await Promise.all(
      jobs.map((job) =>
        this.client.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: JSON.stringify(job) })),
      ),
    );
  }
}
