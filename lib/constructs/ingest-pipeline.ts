import { Duration } from 'aws-cdk-lib';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { INGEST_QUEUE } from '../../contract/queue';
import type { ModelGateway } from './model-gateway';
import { PlatformFunction } from './platform-function';
import type { TenantAccessRole } from './tenant-access-role';

export interface IngestPipelineProps {
  /**
   * Customer-managed key for encryption at rest (a silo tenant's own key).
   * @default - an AWS-managed key
   */
  readonly encryptionKey?: IKey;
  /**
   * Jobs the worker gets an invocation.
   * @default INGEST_QUEUE.batchSize (5)
   */
  readonly batchSize?: number;
  /**
   * Receives of a job before it goes to the dead-letter queue.
   * @default INGEST_QUEUE.maxReceives (3)
   */
  readonly maxReceives?: number;
  /**
   * Longest one worker invocation runs; the queue hides a received job six times as long.
   * @default Duration.seconds(INGEST_QUEUE.workerTimeoutSeconds) (2 minutes)
   */
  readonly workerTimeout?: Duration;
}

export interface IngestWorkerProps {
  /** Environment of the runtime composition root. */
  readonly environment: Readonly<Record<string, string>>;
  readonly tenantAccess: TenantAccessRole;
  readonly models: ModelGateway;
  /**
   * How long the function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/**
 * Large documents are indexed off the request path: the documents handler enqueues jobs of chunks,
 * a worker Lambda embeds and indexes them with the tenant's scoped credentials, failed jobs are
 * retried and, after three receives, kept in a dead-letter queue. Queues are encrypted, TLS only.
 */
export class IngestPipeline extends Construct {
  public readonly queue: IQueue;
  public readonly deadLetterQueue: IQueue;
  private worker?: LambdaFunction;
  private readonly batchSize: number;
  private readonly workerTimeout: Duration;

  constructor(scope: Construct, id: string, props: IngestPipelineProps = {}) {
    super(scope, id);
    this.batchSize = props.batchSize ?? INGEST_QUEUE.batchSize;
    this.workerTimeout = props.workerTimeout ?? Duration.seconds(INGEST_QUEUE.workerTimeoutSeconds);
    const encryption = props.encryptionKey
      ? { encryption: QueueEncryption.KMS, encryptionMasterKey: props.encryptionKey }
      : { encryption: QueueEncryption.SQS_MANAGED };
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      ...encryption,
      enforceSSL: true,
      retentionPeriod: Duration.days(INGEST_QUEUE.deadLetterRetentionDays),
    });
    this.queue = new Queue(this, 'Jobs', {
      ...encryption,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(this.workerTimeout.toSeconds() * 6),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceives ?? INGEST_QUEUE.maxReceives },
    });
  }

  /** The worker, added once the environment (which names this queue) exists. */
  addWorker(props: IngestWorkerProps): LambdaFunction {
    if (this.worker) throw new Error('the ingest pipeline has a worker already');
    this.worker = new PlatformFunction(this, 'Worker', {
      handlerName: 'ingest-worker',
      environment: props.environment,
      logRetention: props.logRetention,
      timeout: this.workerTimeout,
    }).function;
    this.worker.addEventSource(
      new SqsEventSource(this.queue, { batchSize: this.batchSize, reportBatchItemFailures: true }),
    );
    props.tenantAccess.grantAssume(this.worker);
    props.models.grantInvoke(this.worker);
    // A suspended tenant's jobs are queued again, delayed, until it is back.
    this.queue.grantSendMessages(this.worker);
    return this.worker;
  }

  grantEnqueue(grantee: IGrantable): Grant {
    return this.queue.grantSendMessages(grantee);
  }
}
