import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { SqsIngestQueue } from '../../lambdas/adapters/sqs-ingest-queue';
import type { IngestJobRef } from '../../lambdas/core/ports';
import { startLocalSqs } from '../../local/sqs-server';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local-secret' };
const job = (tenantId: string, batch: number): IngestJobRef => ({
  tenantId,
  principal: { type: 'api_key', id: 'k' },
  documentId: 'doc',
  version: 'v1',
  requestId: `${tenantId}-r`,
  batch,
});

/**
 * Fair queuing of ingest jobs: each tenant is a message group, and the queue fills each worker
 * batch round-robin across groups. Latency is counted in worker batches (deterministic), from the
 * real adapter's SendMessage through the local SQS's event source.
 */
describe('ingest queue fairness', () => {
  /** How many worker batches pass until all of `tenant`'s jobs are delivered, after `before` are queued. */
  async function batchesUntilDone(before: IngestJobRef[], tenant: IngestJobRef[]): Promise<number> {
    const sqs = await startLocalSqs({ queueName: 'ingest', platformCredentials: credentials });
    const client = new SQSClient({ region: 'us-east-1', endpoint: sqs.endpoint, credentials });
    try {
      const queue = new SqsIngestQueue(client, sqs.queueUrl);
      await queue.enqueue(before);
      await queue.enqueue(tenant);
      let batches = 0;
      const waiting = new Set(tenant.map((ref) => ref.batch));
      await new Promise<void>((resolve) => {
        sqs.consume(async (event: SQSEvent) => {
          batches++;
          for (const record of event.Records) {
            const ref = JSON.parse(record.body) as IngestJobRef;
            if (ref.tenantId === tenant[0].tenantId) waiting.delete(ref.batch);
          }
          if (waiting.size === 0) resolve();
          return { batchItemFailures: [] };
        });
      });
      expect(sqs.requests.at(-1)).toMatchObject({ MessageGroupId: tenant[0].tenantId });
      return batches;
    } finally {
      client.destroy();
      await sqs.close();
    }
  }

  it("keeps another tenant's jobs within twice their latency alone while one tenant floods the queue", async () => {
    const small = [job('small-co', 0), job('small-co', 1)];
    const alone = await batchesUntilDone([], small);
    const flood = Array.from({ length: 200 }, (_, i) => job('flood-co', i));
    const duringFlood = await batchesUntilDone(flood, small);
    expect(alone).toBe(1);
    // first-in-first-out would deliver them in batch 41 (200 jobs, 5 a batch, before them)
    expect(duringFlood).toBeLessThanOrEqual(2 * alone);
  });
});
