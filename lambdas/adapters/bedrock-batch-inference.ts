import { createHash } from 'node:crypto';
import {
  BedrockClient,
  type BedrockClientConfig,
  ConflictException,
  CreateModelInvocationJobCommand,
  GetModelInvocationJobCommand,
  StopModelInvocationJobCommand,
  ValidationException,
} from '@aws-sdk/client-bedrock';
import { TENANT_COST_TAG } from '../../contract/tenancy';
import type { BatchInference, BatchInferenceStatus } from '../core/ports';

/** The statuses of a job that runs no more, or is about to stop: stopping it again is no error. */
const STOPPED_OR_ENDED: readonly BatchInferenceStatus[] = [
  'Stopping',
  'Stopped',
  'Completed',
  'PartiallyCompleted',
  'Failed',
  'Expired',
];

/**
 * Bedrock batch inference jobs (the control plane's `CreateModelInvocationJob`), run with the
 * plane's batch service role, which reads and writes the files bucket. Each job is tagged
 * `tenantId=<id>`, the cost allocation tag: its spend is the tenant's on AWS's own bill.
 */
export class BedrockBatchInference implements BatchInference {
  private readonly client: BedrockClient;

  constructor(
    config: BedrockClientConfig,
    private readonly roleArn: string,
  ) {
    this.client = new BedrockClient(config);
  }

  async start(job: Parameters<BatchInference['start']>[0]): Promise<string> {
    const created = await this.client.send(
      new CreateModelInvocationJobCommand({
        jobName: job.jobName,
        roleArn: this.roleArn,
        // Bedrock answers the job it made for a token it has seen: a retried start is the same job.
        clientRequestToken: createHash('sha256').update(job.jobName).digest('hex'),
        modelId: job.modelId,
        inputDataConfig: { s3InputDataConfig: { s3Uri: job.inputUri, s3InputFormat: 'JSONL' } },
        outputDataConfig: { s3OutputDataConfig: { s3Uri: job.outputUri } },
        // Bedrock's shortest: a job still waiting for capacity by then ends Expired instead of lingering.
        timeoutDurationInHours: 24,
        tags: [{ key: TENANT_COST_TAG, value: job.tenantId }],
      }),
    );
    if (!created.jobArn) throw new Error(`Bedrock answered no job ARN for ${job.jobName}`);
    return created.jobArn;
  }

  async state(jobArn: string): Promise<{ readonly status: BatchInferenceStatus; readonly message?: string }> {
    const job = await this.client.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
    if (!job.status) throw new Error(`Bedrock answered no status for ${jobArn}`);
    return { status: job.status, ...(job.message && { message: job.message }) };
  }

  async stop(jobArn: string): Promise<void> {
    try {
      await this.client.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }));
    } catch (error) {
      // Bedrock refuses to stop a job that has ended; anything else it refuses is an error.
      if (!(error instanceof ValidationException || error instanceof ConflictException)) throw error;
      if (!STOPPED_OR_ENDED.includes((await this.state(jobArn)).status)) throw error;
    }
  }
}
