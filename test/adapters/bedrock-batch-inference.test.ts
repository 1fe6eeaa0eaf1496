import { createHash } from 'node:crypto';
import {
  BedrockClient,
  CreateModelInvocationJobCommand,
  GetModelInvocationJobCommand,
  StopModelInvocationJobCommand,
} from '@aws-sdk/client-bedrock';
import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { BedrockBatchInference } from '../../lambdas/adapters/bedrock-batch-inference';
import type { BatchInferenceStatus } from '../../lambdas/core/ports';
import { onboard, startTestPlatform } from '../support/platform';
import { tenantContext } from '../support/tenant';

const NOVA = 'amazon.nova-micro-v1:0';
const TITAN = 'amazon.titan-embed-text-v2:0';
const RUNNING: readonly BatchInferenceStatus[] = ['Submitted', 'Validating', 'Scheduled', 'InProgress', 'Stopping'];
const acme = tenantContext('batch-acme');

const novaInput = (i: number) => ({
  schemaVersion: 'messages-v1',
  system: [{ text: 'You answer briefly.' }],
  messages: [{ role: 'user', content: [{ text: `Question ${i}: what is ${i} squared?` }] }],
  // One record cut short, so both stop reasons show.
  inferenceConfig: { maxTokens: i === 7 ? 3 : 64, temperature: 0.2, topP: 0.9, stopSequences: ['\n\n'] },
});
const titanInput = (i: number) => ({ inputText: `Passage ${i} about tenants and their batches.`, dimensions: 256 });
const jsonl = (records: readonly unknown[]) => Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
const records = (count: number, modelInput: (i: number) => unknown) =>
  Array.from({ length: count }, (_, i) => ({
    recordId: `rec${String(i).padStart(8, '0')}`,
    modelInput: modelInput(i),
  }));
const linesOf = (files: readonly Uint8Array[]) =>
  files.flatMap((file) =>
    Buffer.from(file)
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line)),
  );
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The production adapter against the local Bedrock of a local platform: jobs read their input from
 * and write their output to the plane's files bucket (the local S3), under the tenant's prefix
 * where the file store put the input and reads the output back with the tenant's session.
 */
describe('BedrockBatchInference, against the local Bedrock and the local S3', () => {
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;
  let batch: BedrockBatchInference;
  let control: BedrockClient;
  let runtime: BedrockRuntimeClient;
  let roleArn: string;

  beforeAll(async () => {
    platform = await startTestPlatform();
    await onboard(platform, acme.tenantId);
    const config = {
      region: 'us-east-1',
      credentials: platform.credentials,
      requestHandler: new NodeHttpHandler(),
    };
    roleArn = platform.deps.settings.batchInferenceRoleArn ?? '';
    batch = new BedrockBatchInference({ ...config, endpoint: platform.endpoints.bedrockControl }, roleArn);
    control = new BedrockClient({ ...config, endpoint: platform.endpoints.bedrockControl });
    runtime = new BedrockRuntimeClient({ ...config, endpoint: platform.endpoints.bedrock });
  });
  afterEach(() => platform.bedrock.misbehave(undefined));
  afterAll(async () => {
    control.destroy();
    runtime.destroy();
    await platform.close();
  });

  /** Polls the job's state, yielding a turn between looks, until it no longer runs. */
  const ended = async (jobArn: string) => {
    for (let looks = 0; looks < 1000; looks++) {
      const state = await batch.state(jobArn);
      if (!RUNNING.includes(state.status)) return state;
      await turn();
    }
    throw new Error(`${jobArn} still runs`);
  };
  /** The records of a batch's job input, put where the file store keeps them. */
  const inputOf = (batchId: string, lines: readonly unknown[]) =>
    platform.deps.files.putJobInput(acme, batchId, jsonl(lines));
  const manifestOf = (batchId: string, jobArn: string) =>
    JSON.parse(
      platform.s3.serviceObjects
        .get(`${acme.tenantId}/parts/${batchId}/job/output/${jobArn.split('/').at(-1)}/manifest.json.out`)
        ?.toString('utf8') ?? 'null',
    );

  it('runs a Nova job of 120 records: Converse’s answers and tokens, in Nova’s own shape, a bad record as an error line', async () => {
    // GIVEN
    const lines = records(120, novaInput);
    lines[50] = { recordId: 'rec-bad', modelInput: { messages: [{ role: 'assistant', content: [{ text: 'hi' }] }] } };
    const { inputUri, outputUri } = await inputOf('batch_nova', lines);
    const before = platform.bedrock.requests.length;

    // WHEN
    const jobArn = await batch.start({
      jobName: 'batch-acme-batch-nova',
      tenantId: acme.tenantId,
      modelId: NOVA,
      inputUri,
      outputUri,
    });

    // THEN the exact request the adapter sent
    expect(jobArn).toMatch(/^arn:aws:bedrock:us-east-1:000000000000:model-invocation-job\/[a-z0-9]{12}$/);
    const [sent] = platform.bedrock.requests.slice(before);
    expect(sent).toMatchObject({ method: 'POST', path: '/model-invocation-job' });
    expect(sent.body).toEqual({
      jobName: 'batch-acme-batch-nova',
      roleArn: 'arn:aws:iam::000000000000:role/local-batch-inference',
      clientRequestToken: createHash('sha256').update('batch-acme-batch-nova').digest('hex'),
      modelId: NOVA,
      inputDataConfig: {
        s3InputDataConfig: {
          s3Uri: 's3://local-files/batch-acme/parts/batch_nova/job/input.jsonl',
          s3InputFormat: 'JSONL',
        },
      },
      outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://local-files/batch-acme/parts/batch_nova/job/output/' } },
      timeoutDurationInHours: 24,
      tags: [{ key: 'tenantId', value: 'batch-acme' }],
    });
    expect(await ended(jobArn)).toEqual({ status: 'Completed' });

    // THEN each record's line, read back with the tenant's session
    const output = linesOf(await platform.deps.files.jobOutputs(acme, 'batch_nova'));
    expect(output.map((line) => line.recordId)).toEqual(lines.map((line) => line.recordId));
    expect(output[50]).toEqual({
      recordId: 'rec-bad',
      modelInput: lines[50].modelInput,
      error: { errorCode: 400, errorMessage: expect.stringContaining('must start with a user message') },
    });
    for (const i of [0, 7, 119]) {
      const onDemand = await runtime.send(
        new ConverseCommand({
          modelId: NOVA,
          system: novaInput(i).system,
          messages: [{ role: 'user', content: [{ text: `Question ${i}: what is ${i} squared?` }] }],
          inferenceConfig: { maxTokens: novaInput(i).inferenceConfig.maxTokens, stopSequences: ['\n\n'] },
        }),
      );
      expect(output[i]).toEqual({
        recordId: lines[i].recordId,
        modelInput: novaInput(i),
        modelOutput: {
          output: { message: { role: 'assistant', content: [{ text: onDemand.output?.message?.content?.[0]?.text }] } },
          stopReason: onDemand.stopReason,
          // Batch jobs use no prompt cache: Converse's cache counts are not in their usage.
          usage: {
            inputTokens: onDemand.usage?.inputTokens,
            outputTokens: onDemand.usage?.outputTokens,
            totalTokens: onDemand.usage?.totalTokens,
          },
        },
      });
    }
    expect(output[7].modelOutput.stopReason).toBe('max_tokens');
    expect(output[0].modelOutput.stopReason).toBe('end_turn');
    const used = output.filter((line) => line.modelOutput);
    expect(manifestOf('batch_nova', jobArn)).toEqual({
      totalRecordCount: 120,
      processedRecordCount: 120,
      successRecordCount: 119,
      errorRecordCount: 1,
      inputTokenCount: used.reduce((sum, line) => sum + line.modelOutput.usage.inputTokens, 0),
      outputTokenCount: used.reduce((sum, line) => sum + line.modelOutput.usage.outputTokens, 0),
    });
    const described = await control.send(new GetModelInvocationJobCommand({ jobIdentifier: jobArn }));
    expect(described).toMatchObject({
      jobArn,
      jobName: 'batch-acme-batch-nova',
      modelId: NOVA,
      roleArn,
      status: 'Completed',
      submitTime: expect.any(Date),
      endTime: expect.any(Date),
      totalRecordCount: 120,
      successRecordCount: 119,
      errorRecordCount: 1,
    });
  });

  it('runs a Titan Text Embeddings V2 job: InvokeModel’s embeddings and token counts', async () => {
    // GIVEN
    const lines = records(100, titanInput);
    const { inputUri, outputUri } = await inputOf('batch_titan', lines);

    // WHEN
    const jobArn = await batch.start({
      jobName: 'batch-acme-batch-titan',
      tenantId: acme.tenantId,
      modelId: TITAN,
      inputUri,
      outputUri,
    });

    // THEN
    expect(await ended(jobArn)).toEqual({ status: 'Completed' });
    const output = linesOf(await platform.deps.files.jobOutputs(acme, 'batch_titan'));
    expect(output).toHaveLength(100);
    for (const i of [0, 99]) {
      const onDemand = await runtime.send(
        new InvokeModelCommand({
          modelId: TITAN,
          contentType: 'application/json',
          body: JSON.stringify(titanInput(i)),
        }),
      );
      const answer = JSON.parse(Buffer.from(onDemand.body).toString('utf8'));
      expect(output[i]).toEqual({ recordId: lines[i].recordId, modelInput: titanInput(i), modelOutput: answer });
      expect(answer.embedding).toHaveLength(256);
    }
    expect(manifestOf('batch_titan', jobArn)).toEqual({
      totalRecordCount: 100,
      processedRecordCount: 100,
      successRecordCount: 100,
      errorRecordCount: 0,
      inputTokenCount: output.reduce((sum, line) => sum + line.modelOutput.inputTextTokenCount, 0),
      outputTokenCount: 0,
    });
  });

  it('answers a retried start with the same job, and refuses the name with another token', async () => {
    // GIVEN
    const { inputUri, outputUri } = await inputOf('batch_retry', records(100, novaInput));
    const job = { jobName: 'batch-acme-batch-retry', tenantId: acme.tenantId, modelId: NOVA, inputUri, outputUri };
    const first = await batch.start(job);

    // WHEN / THEN
    expect(await batch.start(job)).toBe(first);
    await ended(first);
    expect(await batch.start(job)).toBe(first);
    await expect(
      control.send(
        new CreateModelInvocationJobCommand({
          jobName: job.jobName,
          roleArn,
          clientRequestToken: 'another-token',
          modelId: NOVA,
          inputDataConfig: { s3InputDataConfig: { s3Uri: inputUri } },
          outputDataConfig: { s3OutputDataConfig: { s3Uri: outputUri } },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConflictException' });
    // One job ran: one output file.
    expect(await platform.deps.files.jobOutputs(acme, 'batch_retry')).toHaveLength(1);
  });

  it('stops a running job: Stopping, then Stopped with the records run so far; stopping an ended job is no error', async () => {
    // GIVEN a job held at its sixth record
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached = 0;
    platform.bedrock.misbehave({ batchGate: () => (++reached <= 5 ? Promise.resolve() : held) });
    const { inputUri, outputUri } = await inputOf('batch_stop', records(100, novaInput));
    const jobArn = await batch.start({
      jobName: 'batch-acme-batch-stop',
      tenantId: acme.tenantId,
      modelId: NOVA,
      inputUri,
      outputUri,
    });
    for (let looks = 0; reached < 6 && looks < 1000; looks++) await turn();
    expect(await batch.state(jobArn)).toEqual({ status: 'InProgress' });

    // WHEN
    await batch.stop(jobArn);

    // THEN
    expect(await batch.state(jobArn)).toEqual({ status: 'Stopping' });
    release();
    expect(await ended(jobArn)).toEqual({ status: 'Stopped' });
    expect(linesOf(await platform.deps.files.jobOutputs(acme, 'batch_stop'))).toHaveLength(5);
    expect(manifestOf('batch_stop', jobArn)).toMatchObject({ totalRecordCount: 100, processedRecordCount: 5 });
    // Bedrock refuses to stop an ended job; the adapter takes that as stopped.
    await expect(control.send(new StopModelInvocationJobCommand({ jobIdentifier: jobArn }))).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('State was: Stopped'),
    });
    await expect(batch.stop(jobArn)).resolves.toBeUndefined();
    expect(await batch.state(jobArn)).toEqual({ status: 'Stopped' });
  });

  it('fails a job whose input is missing or in a bucket its role cannot reach, with a message', async () => {
    // WHEN
    const missing = await batch.start({
      jobName: 'batch-acme-missing',
      tenantId: acme.tenantId,
      modelId: NOVA,
      inputUri: 's3://local-files/batch-acme/parts/batch_none/job/input.jsonl',
      outputUri: 's3://local-files/batch-acme/parts/batch_none/job/output/',
    });
    const elsewhere = await batch.start({
      jobName: 'batch-acme-elsewhere',
      tenantId: acme.tenantId,
      modelId: NOVA,
      inputUri: 's3://other-bucket/input.jsonl',
      outputUri: 's3://other-bucket/output/',
    });

    // THEN
    expect(await ended(missing)).toEqual({
      status: 'Failed',
      message: 'The input file s3://local-files/batch-acme/parts/batch_none/job/input.jsonl does not exist.',
    });
    expect(await ended(elsewhere)).toEqual({
      status: 'Failed',
      message: 'The service role cannot reach s3://other-bucket/input.jsonl: access denied.',
    });
  });

  it('throws for an unknown job, and refuses a job of fewer records than the quota, or of an unknown model', async () => {
    // GIVEN
    const unknown = 'arn:aws:bedrock:us-east-1:000000000000:model-invocation-job/abcdefabcdef';
    const { inputUri, outputUri } = await inputOf('batch_small', records(99, novaInput));
    const small = { jobName: 'batch-acme-batch-small', tenantId: acme.tenantId, modelId: NOVA, inputUri, outputUri };

    // WHEN / THEN
    await expect(batch.state(unknown)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(batch.stop(unknown)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(batch.start(small)).rejects.toMatchObject({
      name: 'ValidationException',
      message: expect.stringContaining('fewer than the minimum of 100 records'),
    });
    await expect(batch.start({ ...small, modelId: 'no.such-model' })).rejects.toMatchObject({
      name: 'ValidationException',
      message: 'The provided model identifier is invalid.',
    });
    expect(await platform.deps.files.jobOutputs(acme, 'batch_small')).toEqual([]);
  });
});
