import { createHash, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { readBody, remember, sendAwsError, sigV4Scope } from './aws-wire';

const BATCH_SIZE = 5;
/** As the queue's redrive policy: after this many failed receives a message goes to the dead-letter queue. */
const MAX_RECEIVES = 3;

interface Message {
  readonly messageId: string;
  readonly body: string;
  receives: number;
}

export interface LocalSqs {
  readonly endpoint: string;
  readonly queueUrl: string;
  /** Every SendMessage request body, newest last. */
  readonly requests: Record<string, unknown>[];
  /** Messages that failed `MAX_RECEIVES` times. */
  readonly deadLetters: Message[];
  /** Starts delivering messages to `consumer`, as a Lambda event source mapping does. */
  consume(consumer: (event: SQSEvent) => Promise<SQSBatchResponse>): void;
  close(): Promise<void>;
}

/**
 * SQS `SendMessage` (JSON protocol) for one queue, and an in-process event source mapping that
 * hands batches to the worker, redelivers the items it reports failed, and dead-letters them after
 * `MAX_RECEIVES` tries.
 */
export async function startLocalSqs(options: { queueName: string }): Promise<LocalSqs> {
  const pending: Message[] = [];
  const deadLetters: Message[] = [];
  const requests: Record<string, unknown>[] = [];
  let consumer: ((event: SQSEvent) => Promise<SQSBatchResponse>) | undefined;
  let delivering = false;
  let closed = false;

  const server: Server = createServer(async (request, response) => {
    const body = JSON.parse((await readBody(request)).toString('utf8') || '{}') as Record<string, unknown>;
    remember(requests, body);
    if (sigV4Scope(request.headers.authorization)?.service !== 'sqs') {
      return sendAwsError(
        response,
        403,
        'InvalidClientTokenId',
        'The security token included in the request is invalid.',
      );
    }
    if (request.headers['x-amz-target'] !== 'AmazonSQS.SendMessage') {
      return sendAwsError(response, 400, 'UnsupportedOperation', 'local SQS serves SendMessage only');
    }
    if (body.QueueUrl !== queueUrl || typeof body.MessageBody !== 'string' || body.MessageBody.length === 0) {
      return sendAwsError(response, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
    }
    const message = { messageId: randomUUID(), body: body.MessageBody, receives: 0 };
    pending.push(message);
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end(
      JSON.stringify({
        MessageId: message.messageId,
        MD5OfMessageBody: createHash('md5').update(message.body).digest('hex'),
      }),
    );
    setImmediate(deliver);
  });

  async function deliver(): Promise<void> {
    if (delivering || !consumer || closed) return;
    delivering = true;
    try {
      while (pending.length > 0 && !closed) {
        const batch = pending.splice(0, BATCH_SIZE);
        for (const message of batch) message.receives++;
        const event = {
          Records: batch.map((m) => ({
            messageId: m.messageId,
            body: m.body,
            attributes: { ApproximateReceiveCount: String(m.receives) },
          })),
        } as SQSEvent;
        const failed = new Set(
          (
            await consumer(event).catch(() => ({
              batchItemFailures: batch.map((m) => ({ itemIdentifier: m.messageId })),
            }))
          ).batchItemFailures.map((f) => f.itemIdentifier),
        );
        for (const message of batch.filter((m) => failed.has(m.messageId))) {
          (message.receives >= MAX_RECEIVES ? deadLetters : pending).push(message);
        }
      }
    } finally {
      delivering = false;
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const queueUrl = `${endpoint}/000000000000/${options.queueName}`;
  return {
    endpoint,
    queueUrl,
    requests,
    deadLetters,
    consume: (next) => {
      consumer = next;
      setImmediate(deliver);
    },
    close: () => {
      closed = true;
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
