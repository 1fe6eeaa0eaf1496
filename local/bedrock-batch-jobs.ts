import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import * as z from 'zod';
import { parseJson } from '../lambdas/core/json';
import type { BatchInferenceStatus } from '../lambdas/core/ports';
import { sendAwsError } from './aws-wire';
import type { LocalServiceObjects } from './s3-server';

/** One record run by a model: its `InvokeModel` answer and tokens, or why the model refused it. */
export type LocalInvocation =
  | { readonly output: unknown; readonly inputTokens: number; readonly outputTokens: number }
  | { readonly error: string };

/** Bedrock's S3 URI pattern: a bucket, then a key of these characters only. */
const s3Uri = z
  .string()
  .max(1024)
  .regex(/^s3:\/\/[a-z0-9][-.a-z0-9]{1,61}(?:\/[-!_*'().a-zA-Z0-9]+(?:\/[-!_*'().a-zA-Z0-9]+)*)?\/?$/);

/** `CreateModelInvocationJob`'s body (the subset the platform sends), with Bedrock's patterns and bounds. */
const createModelInvocationJobSchema = z
  .object({
    jobName: z
      .string()
      .max(63)
      .regex(/^[a-zA-Z0-9]{1,63}(-*[a-zA-Z0-9+\-.]){0,63}$/),
    roleArn: z
      .string()
      .max(2048)
      .regex(/^arn:aws(-[^:]+)?:iam::([0-9]{12})?:role\/.+$/),
    clientRequestToken: z
      .string()
      .max(256)
      .regex(/^[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}$/)
      .optional(),
    modelId: z.string().min(1).max(2048),
    inputDataConfig: z
      .object({ s3InputDataConfig: z.object({ s3Uri, s3InputFormat: z.literal('JSONL').optional() }).strict() })
      .strict(),
    outputDataConfig: z.object({ s3OutputDataConfig: z.object({ s3Uri }).strict() }).strict(),
    timeoutDurationInHours: z.number().int().min(24).max(168).optional(),
    tags: z
      .array(z.object({ key: z.string().min(1).max(128), value: z.string().max(256) }).strict())
      .max(200)
      .optional(),
  })
  .strict();
type CreateModelInvocationJob = z.infer<typeof createModelInvocationJobSchema>;

/** A line of a job's input. */
const recordSchema = z.object({
  recordId: z.string().min(1).optional(),
  modelInput: z.record(z.string(), z.unknown()),
});

/** A job identifier as Bedrock takes it: the job's ARN, or the id that ends it. */
const JOB_IDENTIFIER =
  /^(?:arn:aws(?:-cn|-us-gov)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-invocation-job\/)?([a-z0-9]{12})$/;
const ENDED: readonly BatchInferenceStatus[] = ['Completed', 'PartiallyCompleted', 'Failed', 'Stopped', 'Expired'];
/** Bedrock's default `timeoutDurationInHours`. */
const DEFAULT_TIMEOUT_HOURS = 168;

interface LocalBatchJob {
  readonly jobArn: string;
  readonly id: string;
  readonly request: CreateModelInvocationJob;
  /** The model its records run on (a profile's resolved). */
  readonly modelId: string;
  readonly submitTime: Date;
  status: BatchInferenceStatus;
  message?: string;
  lastModifiedTime: Date;
  endTime?: Date;
  counts?: { total: number; processed: number; success: number; error: number };
}

/**
 * Bedrock's batch inference (`CreateModelInvocationJob`, `GetModelInvocationJob`,
 * `StopModelInvocationJob`): a job reads its JSON lines from a bucket of `storage` and writes
 * `<output URI><job id>/<input file name>.out` and `manifest.json.out` there, as the job's service
 * role would (bucket-wide). It runs right after it is created, a record a turn of the event loop
 * (or as `gate` lets it): Submitted, InProgress, then Completed, Failed or Stopped.
 */
export function localBatchJobs(options: {
  readonly region: string;
  /** Bedrock's quota of records a job needs at least: fewer is a ValidationException at creation. */
  readonly minRecords: number;
  /** The buckets jobs reach, by name. */
  readonly storage: Readonly<Record<string, LocalServiceObjects>>;
  /** The served model a job's `modelId` names (a model id or an inference profile); undefined: none. */
  readonly modelOf: (modelId: string) => string | undefined;
  /** How a model runs a record's `modelInput`; undefined: local Bedrock runs no batch job of that model. */
  readonly invoker: (modelId: string) => ((modelInput: unknown) => LocalInvocation) | undefined;
  /** Awaited before each record instead of the next turn, when it answers a promise: tests stop a job midway. */
  readonly gate: () => Promise<void> | undefined;
}) {
  const jobs = new Map<string, LocalBatchJob>();

  /** The object a URI names, when the URI is in a bucket jobs reach. */
  const locate = (uri: string) => {
    const [bucket, ...key] = uri.slice('s3://'.length).split('/');
    const objects = options.storage[bucket];
    return objects && { objects, key: key.join('/') };
  };
  const recordLines = (body: Buffer) =>
    body
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '');

  const end = (job: LocalBatchJob, status: BatchInferenceStatus, message?: string) => {
    job.status = status;
    job.message = message;
    job.endTime = job.lastModifiedTime = new Date();
  };

  async function run(job: LocalBatchJob): Promise<void> {
    await nextTurn();
    if (job.status === 'Stopping') return end(job, 'Stopped');
    job.status = 'InProgress';
    job.lastModifiedTime = new Date();
    const { s3Uri: inputUri } = job.request.inputDataConfig.s3InputDataConfig;
    const { s3Uri: outputUri } = job.request.outputDataConfig.s3OutputDataConfig;
    const input = locate(inputUri);
    const output = locate(outputUri);
    if (!input || !output) {
      return end(job, 'Failed', `The service role cannot reach ${input ? outputUri : inputUri}: access denied.`);
    }
    const body = input.objects.get(input.key);
    if (!body) return end(job, 'Failed', `The input file ${inputUri} does not exist.`);
    const invoke = options.invoker(job.modelId);
    if (!invoke) return end(job, 'Failed', `local Bedrock runs no batch inference job of ${job.modelId}.`);
    const parsed = recordLines(body).map((line) => recordSchema.safeParse(parseJson(line)));
    const malformed = parsed.findIndex((record) => !record.success);
    if (malformed >= 0) {
      return end(
        job,
        'Failed',
        `Record ${malformed + 1} of ${inputUri} is not a JSON object with a modelInput object.`,
      );
    }
    const records = parsed.flatMap((record) => (record.success ? [record.data] : []));
    const counts = { total: records.length, processed: 0, success: 0, error: 0 };
    job.counts = counts;
    const tokens = { input: 0, output: 0 };
    const lines: string[] = [];
    for (const [index, { recordId = String(index).padStart(11, '0'), modelInput }] of records.entries()) {
      await (options.gate() ?? nextTurn());
      if (stopping(job)) break;
      const result = invoke(modelInput);
      counts.processed += 1;
      if ('error' in result) {
        counts.error += 1;
        lines.push(JSON.stringify({ recordId, modelInput, error: { errorCode: 400, errorMessage: result.error } }));
      } else {
        counts.success += 1;
        tokens.input += result.inputTokens;
        tokens.output += result.outputTokens;
        lines.push(JSON.stringify({ recordId, modelInput, modelOutput: result.output }));
      }
    }
    const folder = output.key === '' || output.key.endsWith('/') ? output.key : `${output.key}/`;
    const prefix = `${folder}${job.id}/`;
    const inputName = input.key.split('/').at(-1);
    output.objects.put(`${prefix}${inputName}.out`, Buffer.from(lines.map((line) => `${line}\n`).join('')));
    const manifest = {
      totalRecordCount: counts.total,
      processedRecordCount: counts.processed,
      successRecordCount: counts.success,
      errorRecordCount: counts.error,
      inputTokenCount: tokens.input,
      outputTokenCount: tokens.output,
    };
    output.objects.put(`${prefix}manifest.json.out`, Buffer.from(JSON.stringify(manifest)));
    end(job, stopping(job) ? 'Stopped' : 'Completed');
  }

  const answer = (response: ServerResponse, payload: unknown) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(payload));
  };

  const create = (body: unknown, response: ServerResponse) => {
    const parsed = createModelInvocationJobSchema.safeParse(body);
    if (!parsed.success) return sendAwsError(response, 400, 'ValidationException', parsed.error.message);
    const request = parsed.data;
    const modelId = options.modelOf(request.modelId);
    if (!modelId)
      return sendAwsError(response, 400, 'ValidationException', 'The provided model identifier is invalid.');
    const named = [...jobs.values()].find((job) => job.request.jobName === request.jobName);
    const token = request.clientRequestToken;
    // The same token is the same request: its job, however far it has got.
    if (named && token !== undefined && named.request.clientRequestToken === token) {
      return answer(response, { jobArn: named.jobArn });
    }
    if (named) {
      return sendAwsError(
        response,
        409,
        'ConflictException',
        `A model invocation job named ${request.jobName} already exists.`,
      );
    }
    if (token !== undefined && [...jobs.values()].some((job) => job.request.clientRequestToken === token)) {
      return sendAwsError(response, 409, 'ConflictException', 'The client request token was used by another job.');
    }
    // The records quota is checked as the job is made; an input out of reach or missing fails the job instead.
    const input = locate(request.inputDataConfig.s3InputDataConfig.s3Uri);
    const inputBody = input?.objects.get(input.key);
    const records = inputBody && recordLines(inputBody).length;
    if (records !== undefined && records < options.minRecords) {
      return sendAwsError(
        response,
        400,
        'ValidationException',
        `The input has ${records} records, fewer than the minimum of ${options.minRecords} records per batch inference job.`,
      );
    }
    const id = randomBytes(6).toString('hex');
    const now = new Date();
    const job: LocalBatchJob = {
      jobArn: `arn:aws:bedrock:${options.region}:000000000000:model-invocation-job/${id}`,
      id,
      request,
      modelId,
      submitTime: now,
      status: 'Submitted',
      lastModifiedTime: now,
    };
    jobs.set(id, job);
    run(job).catch((error: unknown) => end(job, 'Failed', `Internal error: ${(error as Error).message}`));
    answer(response, { jobArn: job.jobArn });
  };

  /** The job an identifier names: one of another region is not here. */
  const jobOf = (identifier: string) => {
    const id = JOB_IDENTIFIER.exec(identifier)?.[1];
    const job = id === undefined ? undefined : jobs.get(id);
    return job && (identifier === job.id || identifier === job.jobArn) ? job : undefined;
  };

  const describe = (job: LocalBatchJob) => {
    const hours = job.request.timeoutDurationInHours ?? DEFAULT_TIMEOUT_HOURS;
    return {
      jobArn: job.jobArn,
      jobName: job.request.jobName,
      modelId: job.request.modelId,
      roleArn: job.request.roleArn,
      ...(job.request.clientRequestToken !== undefined && { clientRequestToken: job.request.clientRequestToken }),
      status: job.status,
      ...(job.message !== undefined && { message: job.message }),
      submitTime: job.submitTime.toISOString(),
      lastModifiedTime: job.lastModifiedTime.toISOString(),
      ...(job.endTime && { endTime: job.endTime.toISOString() }),
      inputDataConfig: job.request.inputDataConfig,
      outputDataConfig: job.request.outputDataConfig,
      timeoutDurationInHours: hours,
      jobExpirationTime: new Date(job.submitTime.getTime() + hours * 3_600_000).toISOString(),
      ...(job.counts && {
        totalRecordCount: job.counts.total,
        processedRecordCount: job.counts.processed,
        successRecordCount: job.counts.success,
        errorRecordCount: job.counts.error,
      }),
    };
  };

  return {
    /** Serves a request whose path starts `/model-invocation-job`. */
    serve(method: string, url: string, body: unknown, response: ServerResponse) {
      const path = url.split('?')[0];
      if (method === 'POST' && path === '/model-invocation-job') return create(body, response);
      const route = /^\/model-invocation-job\/([^/]+)(\/stop)?$/.exec(path);
      if (!route || method !== (route[2] ? 'POST' : 'GET')) {
        return sendAwsError(
          response,
          404,
          'UnknownOperationException',
          'local Bedrock serves create, get and stop of model invocation jobs only',
        );
      }
      const identifier = decodeURIComponent(route[1]);
      if (!JOB_IDENTIFIER.test(identifier)) {
        return sendAwsError(response, 400, 'ValidationException', `${identifier} is not a model invocation job.`);
      }
      const job = jobOf(identifier);
      if (!job) {
        return sendAwsError(response, 404, 'ResourceNotFoundException', `The job ${identifier} does not exist.`);
      }
      if (!route[2]) return answer(response, describe(job));
      if (ENDED.includes(job.status)) {
        return sendAwsError(
          response,
          400,
          'ValidationException',
          `The job ${job.jobArn} cannot be stopped. State was: ${job.status}`,
        );
      }
      // It stops at its next record: what it has written so far stays.
      job.status = 'Stopping';
      job.lastModifiedTime = new Date();
      answer(response, {});
    },
  };
}

/** Whether the job was told to stop (read through a call: it changes while the job awaits). */
function stopping(job: LocalBatchJob): boolean {
  return job.status === 'Stopping';
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
