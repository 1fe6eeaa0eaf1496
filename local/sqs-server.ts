import { createHash, randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { INGEST_QUEUE } from '../contract/queue';
import { failAsAws, localServer, readBody, remember, sendAwsError, signatureMatches, sigV4Scope } from './aws-wire';
import { Journal } from './journal';

const { batchSize: BATCH_SIZE, maxReceives: MAX_RECEIVES } = INGEST_QUEUE;

interface Message {
  readonly messageId: string;
  readonly body: string;
  /** `MessageGroupId`: the tenant, for the ingest queue. */
  readonly group: string;
  /** Sent with `DelaySeconds`: not delivered before this (epoch ms). */
  readonly visibleAt?: number;
  receives: number;
}

/** The queue's journal: a message sent, then done (deleted by the consumer) or dead-lettered. */
type QueueEntry =
  | {
      readonly op: 'send';
      readonly messageId: string;
      readonly body: string;
      readonly group?: string;
      readonly visibleAt?: number;
    }
  | { readonly op: 'done' | 'dead'; readonly messageId: string };

export interface LocalSqs {
  readonly endpoint: string;
  readonly queueUrl: string;
  /** Every SendMessage request body, newest last. */
  readonly requests: Record<string, unknown>[];
  /** Messages that failed `MAX_RECEIVES` times. */
  readonly deadLetters: Message[];
  /** Starts delivering messages to `consumer`, as a Lambda event source mapping does. */
  consume(consumer: (event: SQSEvent) => Promise<SQSBatchResponse>): void;
  /** Delivers the delayed messages whose delay has passed by the clock (also checked on a timer). */
  releaseDue(): void;
  close(): Promise<void>;
}

/**
 * SQS `SendMessage` (JSON protocol) for one queue, and an in-process event source mapping that
 * hands batches to the worker, redelivers the items it reports failed, and dead-letters them after
 * `MAX_RECEIVES` tries, and holds a message sent with `DelaySeconds` until then by `now`. As an SQS fair queue, it fills each batch round-robin across message
 * groups, so a group with a backlog waits its turn instead of holding back the others. With a `file`, a message is journaled before `SendMessage` answers and
 * until the worker is done with it, so a crash loses no acknowledged message: it is delivered
 * again after a restart, as SQS does after a visibility timeout.
 */
export async function startLocalSqs(options: {
  queueName: string;
  /**
   * The platform's own roles' key, the only one the queue takes messages from (the functions' roles
   * hold `sqs:SendMessage`; no tenant session does).
   */
  platformCredentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  file?: string;
  now?: () => number;
}): Promise<LocalSqs> {
  const now = options.now ?? Date.now;
  const journal = options.file ? new Journal<QueueEntry>(options.file) : undefined;
  const replayed = replay(journal?.read() ?? []);
  const { deadLetters } = replayed;
  const pending = new FairQueue();
  const delayed: Message[] = [];
  for (const message of replayed.pending) {
    if (message.visibleAt === undefined) pending.push(message);
    else {
      delayed.push(message);
      setTimeout(releaseDue, Math.max(0, message.visibleAt - now())).unref();
    }
  }
  const sendEntry = (m: Message) => ({
    op: 'send' as const,
    messageId: m.messageId,
    body: m.body,
    group: m.group,
    ...(m.visibleAt !== undefined && { visibleAt: m.visibleAt }),
  });
  journal?.rewrite([
    ...replayed.pending.map(sendEntry),
    ...deadLetters.flatMap((m) => [sendEntry(m), { op: 'dead' as const, messageId: m.messageId }]),
  ]);
  const requests: Record<string, unknown>[] = [];
  let consumer: ((event: SQSEvent) => Promise<SQSBatchResponse>) | undefined;
  let delivering = false;
  let closed = false;

  const server: Server = localServer(async (request, response) => {
    const raw = await readBody(request);
    const body = JSON.parse(raw.toString('utf8') || '{}') as Record<string, unknown>;
    remember(requests, body);
    const scope = sigV4Scope(request.headers.authorization);
    if (scope?.service !== 'sqs' || !(await signatureMatches(request, raw, options.platformCredentials))) {
      // A tenant session, a forged or unknown key: IAM grants SendMessage to the functions' roles only.
      return sendAwsError(
        response,
        403,
        scope?.accessKeyId === options.platformCredentials.accessKeyId ? 'InvalidSignature' : 'AccessDenied',
        'The security token included in the request is not allowed to send to this queue.',
      );
    }
    if (request.headers['x-amz-target'] !== 'AmazonSQS.SendMessage') {
      return sendAwsError(response, 400, 'UnsupportedOperation', 'local SQS serves SendMessage only');
    }
    if (body.QueueUrl !== queueUrl || typeof body.MessageBody !== 'string' || body.MessageBody.length === 0) {
      return sendAwsError(response, 400, 'QueueDoesNotExist', 'The specified queue does not exist.');
    }
    const delaySeconds = body.DelaySeconds ?? 0;
    if (!Number.isInteger(delaySeconds) || (delaySeconds as number) < 0 || (delaySeconds as number) > 900) {
      return sendAwsError(response, 400, 'InvalidParameterValue', 'DelaySeconds must be an integer from 0 to 900.');
    }
    const group = typeof body.MessageGroupId === 'string' ? body.MessageGroupId : '';
    const message: Message = {
      messageId: randomUUID(),
      body: body.MessageBody,
      group,
      receives: 0,
      ...(delaySeconds !== 0 && { visibleAt: now() + (delaySeconds as number) * 1000 }),
    };
    journal?.append([sendEntry(message)]);
    if (message.visibleAt === undefined) pending.push(message);
    else {
      delayed.push(message);
      setTimeout(releaseDue, (delaySeconds as number) * 1000).unref();
    }
    response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    response.end(
      JSON.stringify({
        MessageId: message.messageId,
        MD5OfMessageBody: createHash('md5').update(message.body).digest('hex'),
      }),
    );
    setImmediate(deliver);
  }, failAsAws);

  function releaseDue(): void {
    const due = delayed.filter((message) => (message.visibleAt ?? 0) <= now());
    if (due.length === 0) return;
    for (const message of due) {
      delayed.splice(delayed.indexOf(message), 1);
      pending.push(message);
    }
    setImmediate(deliver);
  }

  async function deliver(): Promise<void> {
    if (delivering || !consumer || closed) return;
    delivering = true;
    try {
      while (pending.size > 0 && !closed) {
        const batch = pending.take(BATCH_SIZE);
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
        const outcomes: QueueEntry[] = [];
        for (const message of batch) {
          if (!failed.has(message.messageId)) outcomes.push({ op: 'done', messageId: message.messageId });
          else if (message.receives < MAX_RECEIVES) pending.push(message);
          else {
            deadLetters.push(message);
            outcomes.push({ op: 'dead', messageId: message.messageId });
          }
        }
        journal?.append(outcomes);
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
    releaseDue,
    close: () => {
      closed = true;
      journal?.close();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The queue a journal describes: messages sent and not yet done, and those dead-lettered. */
function replay(entries: readonly QueueEntry[]): { pending: Message[]; deadLetters: Message[] } {
  const sent = new Map<string, Message>();
  const dead: Message[] = [];
  for (const entry of entries) {
    if (entry.op === 'send') {
      sent.set(entry.messageId, {
        messageId: entry.messageId,
        body: entry.body,
        group: entry.group ?? '',
        ...(entry.visibleAt !== undefined && { visibleAt: entry.visibleAt }),
        receives: 0,
      });
    } else {
      const message = sent.get(entry.messageId);
      sent.delete(entry.messageId);
      if (entry.op === 'dead' && message) dead.push(message);
    }
  }
  return { pending: [...sent.values()], deadLetters: dead };
}

/** Pending messages by message group, taken round-robin: one from each group in turn. */
export class FairQueue {
  private readonly groups = new Map<string, Message[]>();

  get size(): number {
    let total = 0;
    for (const messages of this.groups.values()) total += messages.length;
    return total;
  }

  push(message: Message): void {
    const messages = this.groups.get(message.group) ?? [];
    messages.push(message);
    this.groups.set(message.group, messages);
  }

  /** Up to `count` messages, a group's turn ending after one; a group served goes to the back. */
  take(count: number): Message[] {
    const taken: Message[] = [];
    while (taken.length < count && this.groups.size > 0) {
      const [group, messages] = this.groups.entries().next().value as [string, Message[]];
      taken.push(messages.shift() as Message);
      this.groups.delete(group);
      if (messages.length > 0) this.groups.set(group, messages);
    }
    return taken;
  }
}
