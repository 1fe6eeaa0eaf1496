import { Duration } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { INGEST_WORKER_TIMEOUT_SECONDS } from '../config';
import type { ModelGateway } from './model-gateway';
import { PlatformFunction } from './platform-function';
import type { TenantAccessRole } from './tenant-access-role';

/** How long the worker may take on one batch; the queue hides a received message six times as long. */
const WORKER_TIMEOUT = Duration.seconds(INGEST_WORKER_TIMEOUT_SECONDS);

export interface IngestWorkerProps {
  /** Environment of the runtime composition root. */
  readonly environment: Readonly<Record<string, string>>;
  readonly tenantAccess: TenantAccessRole;
  readonly models: ModelGateway;
}

/**
 * Large documents are indexed off the request path: the documents handler enqueues jobs of chunks,
 * a worker Lambda embeds and indexes them with the tenant's scoped credentials, failed jobs are
 * retried and, after three receives, kept in a dead-letter queue. Queues are encrypted, TLS only.
 */
export class IngestPipeline extends Construct {
  public readonly queue: IQueue;
  public readonly deadLetterQueue: IQueue;
  private worker?: IFunction;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, 'Jobs', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(WORKER_TIMEOUT.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 3 },
    });
  }

  /** The worker, added once the environment (which names this queue) exists. */
  addWorker(props: IngestWorkerProps): IFunction {
    if (this.worker) throw new Error('the ingest pipeline has a worker already');
    this.worker = new PlatformFunction(this, 'Worker', {
      handlerName: 'ingest-worker',
      environment: props.environment,
      timeout: WORKER_TIMEOUT,
    }).function;
    this.worker.addEventSource(new SqsEventSource(this.queue, { batchSize: 5, reportBatchItemFailures: true }));
    props.tenantAccess.grantAssume(this.worker);
    props.models.grantInvoke(this.worker);
    return this.worker;
  }

  grantEnqueue(grantee: IGrantable): void {
    this.queue.grantSendMessages(grantee);
  }
}
