import OpenAI, { toFile } from 'openai';
import { runBatchStep } from '../../lambdas/core/batches';
import type { BatchStore, FileStore, Ledger } from '../../lambdas/core/ports';
import { modelDeps } from '../../lambdas/runtime';
import { chatLines, jsonLines } from '../support/batches';
import { call, ManualClock, onboard, startTestPlatform } from '../support/platform';

/**
 * A batch's steps driven by the test, not the worker: duplicate deliveries, crashes between a part
 * and its record, and cancels and expiry between them, each ending with the lines in the output
 * files exactly the lines counted and billed.
 */
describe('batch steps under duplicates, crashes and races', () => {
  const clock = new ManualClock(Date.parse('2026-12-07T12:00:30Z'));
  let platform: Awaited<ReturnType<typeof startTestPlatform>>;

  beforeAll(async () => {
    platform = await startTestPlatform(undefined, { now: clock.now, ingestWorker: false });
  });
  afterAll(() => platform.close());

  const client = (apiKey: string) => new OpenAI({ baseURL: `${platform.url}/v1`, apiKey, maxRetries: 0 });
  const plenty = () => 600_000;

  /** The platform's batch store, with some of its methods replaced (its adapter is a class: bound, not spread). */
  const batchStore = (replaced: Partial<BatchStore> = {}): BatchStore => {
    const store = platform.deps.batches;
    return {
      create: (...args) => store.create(...args),
      get: (...args) => store.get(...args),
      list: (...args) => store.list(...args),
      update: (...args) => store.update(...args),
      ...replaced,
    };
  };
  const fileStore = (replaced: Partial<FileStore>): FileStore => {
    const files = platform.deps.files;
    const bound = Object.fromEntries(
      (
        [
          'put',
          'get',
          'content',
          'list',
          'delete',
          'deleteAll',
          'putPart',
          'parts',
          'putJobInput',
          'jobOutputs',
          'deleteParts',
        ] as const
      ).map((name) => [name, files[name].bind(files)]),
    ) as unknown as FileStore;
    return { ...bound, ...replaced };
  };
  const ledgerWith = (settle: Ledger['settle']): Ledger => {
    const ledger = platform.deps.ledger;
    const bound = Object.fromEntries(
      (['reserve', 'reserveScope', 'settle', 'release', 'scopeUsage', 'usage', 'deleteAll'] as const).map((name) => [
        name,
        ledger[name].bind(ledger),
      ]),
    ) as unknown as Ledger;
    return { ...bound, settle };
  };

  /** The runner's ports, with any replaced by a test's. */
  const runner = (ports: { batches?: BatchStore; files?: FileStore; ledger?: Ledger; now?: () => number } = {}) => ({
    ...modelDeps(platform.deps),
    siloTenantId: platform.deps.settings.siloTenantId,
    ...ports,
  });

  /** The local Bedrock's jobs run `records` records, then wait until the returned function is called (and run on). */
  function holdJobsAfter(records: number): () => void {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reached = 0;
    platform.bedrock.misbehave({ batchGate: () => (++reached <= records ? Promise.resolve() : held) });
    return () => {
      release();
      platform.bedrock.misbehave(undefined);
    };
  }

  /** A tenant whose batch of `lines` is created (the worker is off: no step has run). */
  async function batchOf(tenantId: string, lines: number, limits = { requestsPerMinute: 10 }) {
    const { apiKey } = await onboard(platform, tenantId, { limits });
    const openai = client(apiKey);
    const input = await openai.files.create({
      file: await toFile(Buffer.from(chatLines(lines)), 'lines.jsonl'),
      purpose: 'batch',
    });
    const created = await openai.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    return { apiKey, openai, id: created.id, ref: { kind: 'batch' as const, tenantId, batchId: created.id } };
  }

  /** The ended batch's output and error lines, its counts, and what the tenant was billed. */
  async function outcome(apiKey: string, openai: OpenAI, id: string) {
    const batch = await openai.batches.retrieve(id);
    const content = async (fileId: string | null | undefined) =>
      fileId ? jsonLines(await (await openai.files.content(fileId)).text()) : [];
    const usage = (await call(platform, 'GET', '/v1/usage', { credential: apiKey })).body;
    return {
      batch,
      output: await content(batch.output_file_id),
      errors: await content(batch.error_file_id),
      billedRequests: usage.totals.requests,
    };
  }

  it('leaves out of the output a part written by a step that crashed before its record, when the batch is then cancelled', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-crash-cancel', 20);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ran');
    clock.advance(60_000);
    // The step's part is written, then its record's write fails: the step is delivered again later.
    let failed = false;
    const crashing = batchStore({
      update: async (tenant, batch) => {
        if (failed) return platform.deps.batches.update(tenant, batch);
        failed = true;
        throw new Error('crashed before the record');
      },
    });
    await expect(runBatchStep(runner({ batches: crashing }), ref, plenty)).rejects.toThrow('crashed');
    await openai.batches.cancel(id);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ended');

    const { batch, output, errors, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'cancelled', request_counts: { total: 20, completed: 5, failed: 0 } });
    expect(output.map((line) => line.custom_id)).toEqual([
      'request-0',
      'request-1',
      'request-2',
      'request-3',
      'request-4',
    ]);
    expect(errors).toHaveLength(15);
    expect(billedRequests).toBe(5);
  });

  it('leaves out of the output a crashed step’s part when the batch then expires', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-crash-expire', 20);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ran');
    clock.advance(60_000);
    const crashing = batchStore({
      update: async () => {
        throw new Error('crashed before the record');
      },
    });
    await expect(runBatchStep(runner({ batches: crashing }), ref, plenty)).rejects.toThrow('crashed');
    clock.advance(24 * 3600 * 1000);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ended');

    const { batch, output, errors, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'expired', request_counts: { total: 20, completed: 5, failed: 0 } });
    expect(output).toHaveLength(5);
    expect([...output, ...errors].map((line) => line.custom_id).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `request-${i}`).sort(),
    );
    expect(billedRequests).toBe(5);
  });

  it('keeps the winning step’s part when a duplicate delivery of the same step, which ran fewer lines, loses the commit', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-duplicate', 20);
    // The duplicate reads the batch, runs one line (its time runs short), and writes its part after the first step committed.
    let duplicateAtPart!: () => void;
    const duplicateReachedPart = new Promise<void>((resolve) => {
      duplicateAtPart = resolve;
    });
    let firstDone!: () => void;
    const firstCommitted = new Promise<void>((resolve) => {
      firstDone = resolve;
    });
    const first = batchStore({
      update: async (tenant, batch) => {
        if (batch.next > 0) await duplicateReachedPart;
        return platform.deps.batches.update(tenant, batch);
      },
    });
    const late = fileStore({
      putPart: async (...args) => {
        duplicateAtPart();
        await firstCommitted;
        return platform.deps.files.putPart(...args);
      },
    });
    let asked = 0;
    // Room for one line: the first look starts it, every later one finds too little time.
    const short = () => (asked++ < 2 ? 600_000 : 1_000);
    const [one, two] = await Promise.all([
      runBatchStep(runner({ batches: first }), ref, plenty).finally(firstDone),
      runBatchStep(runner({ files: late }), ref, short),
    ]);
    expect([one, two]).toEqual(['ran', 'dropped: lines run by another step']);
    for (let step = 0; step < 10; step++) {
      clock.advance(60_000);
      if ((await runBatchStep(runner(), ref, plenty)) === 'ended') break;
    }

    const { batch, output, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 20, completed: 20, failed: 0 } });
    expect(output.map((line) => line.custom_id)).toEqual(Array.from({ length: 20 }, (_, i) => `request-${i}`));
    expect(billedRequests).toBe(20);
  });

  it('bills every line in the output when a duplicate step commits lines as another ends the batch as expired', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-expire-commit', 20);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ran');
    clock.advance(60_000);
    const expiresAtMs = ((await openai.batches.retrieve(id)).expires_at as number) * 1000;
    // The running step reads the batch before its window ends and commits its lines after the
    // ending step marked it closing; the ending step settles between that commit and the running one's settle.
    const signal = () => {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      return { promise, resolve };
    };
    const runningRead = signal();
    const closingWritten = signal();
    const runningCommitted = signal();
    const runningEnded = signal();
    const endingSettled = signal();
    const store = platform.deps.batches;
    const running = {
      batches: batchStore({
        get: async (...args) => {
          const batch = await store.get(...args);
          runningRead.resolve();
          return batch;
        },
        update: async (tenant, batch) => {
          if (batch.next <= 5) return store.update(tenant, batch);
          await closingWritten.promise;
          const written = await store.update(tenant, batch);
          if (written) runningCommitted.resolve();
          return written;
        },
      }),
      ledger: ledgerWith(async (...args) => {
        await endingSettled.promise;
        return platform.deps.ledger.settle(...args);
      }),
      now: () => expiresAtMs - 60_000,
    };
    const ending = {
      batches: batchStore({
        update: async (tenant, batch) => {
          const written = await store.update(tenant, batch);
          if (batch.closing) closingWritten.resolve();
          return written;
        },
      }),
      ledger: ledgerWith(async (...args) => {
        await Promise.race([runningCommitted.promise, runningEnded.promise]);
        await platform.deps.ledger.settle(...args);
        endingSettled.resolve();
      }),
      now: () => expiresAtMs + 1000,
    };
    await Promise.all([
      runBatchStep(runner(running), ref, plenty).finally(runningEnded.resolve),
      runningRead.promise.then(() => runBatchStep(runner(ending), ref, plenty)),
    ]);
    // Whatever is left to do is done by the next delivery.
    await runBatchStep(runner(), ref, plenty);

    const { batch, output, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch.status).toBe('expired');
    expect(batch.request_counts?.completed).toBe(output.length);
    expect(billedRequests).toBe(output.length);
  });

  it('stops the Bedrock job of a batch cancelled while the job was starting, its records run billed', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-cancel-start', 100);
    // The job runs five records, then waits for the test.
    const release = holdJobsAfter(5);
    const inference = platform.deps.batchInference as NonNullable<typeof platform.deps.batchInference>;
    // The cancel comes as Bedrock makes the job, before the step records it.
    const starting = {
      ...runner(),
      batchInference: {
        start: async (job: Parameters<typeof inference.start>[0]) => {
          const arn = await inference.start(job);
          await openai.batches.cancel(id);
          return arn;
        },
        state: (arn: string) => inference.state(arn),
        stop: (arn: string) => inference.stop(arn),
      },
    };
    try {
      await runBatchStep(starting, ref, plenty);
      const arn = (await platform.deps.batches.get({ tenantId: 'race-cancel-start' } as never, id))?.job?.arn;
      expect(arn).toEqual(expect.any(String));
      expect(await runBatchStep(runner(), ref, plenty)).toBe('waiting');
      expect((await inference.state(arn as string)).status).toBe('Stopping');
    } finally {
      release();
    }
    for (let step = 0; step < 50; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      if ((await runBatchStep(runner(), ref, plenty)) === 'ended') break;
    }

    const { batch, output, errors, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'cancelled', request_counts: { total: 100, completed: 5, failed: 0 } });
    expect(output).toHaveLength(5);
    expect(errors).toHaveLength(95);
    expect(billedRequests).toBe(5);
  });

  it('stops and bills the Bedrock job of a step that crashed after starting it, when the batch is then cancelled', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-start-crash', 100);
    const release = holdJobsAfter(5);
    // The step starts the job, then crashes before it records it; the batch is cancelled meanwhile.
    const crashing = batchStore({
      update: async (tenant, batch) => {
        if (batch.job?.phase === 'running') throw new Error('crashed before the record');
        return platform.deps.batches.update(tenant, batch);
      },
    });
    try {
      await expect(runBatchStep(runner({ batches: crashing }), ref, plenty)).rejects.toThrow('crashed');
      await openai.batches.cancel(id);
      // Started again (the same job, by its client token), recorded, then stopped.
      expect(await runBatchStep(runner(), ref, plenty)).toBe('ran');
      expect(await runBatchStep(runner(), ref, plenty)).toBe('waiting');
      const starts = platform.bedrock.requests.filter(
        (request) =>
          request.path === '/model-invocation-job' &&
          (request.body as { jobName: string }).jobName === id.replace('_', '-'),
      );
      expect(starts).toHaveLength(2);
      expect(
        new Set(starts.map((request) => (request.body as { clientRequestToken: string }).clientRequestToken)).size,
      ).toBe(1);
    } finally {
      release();
    }
    for (let step = 0; step < 50; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      if ((await runBatchStep(runner(), ref, plenty)) === 'ended') break;
    }
    const { batch, output, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'cancelled', request_counts: { total: 100, completed: 5 } });
    expect(output).toHaveLength(5);
    expect(billedRequests).toBe(5);
  });

  it('fails a batch whose Bedrock job failed without answering a record, its reason in the batch, nothing billed', async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-job-failed', 100, { requestsPerMinute: 1_000 });
    // The job's input never reaches the bucket: Bedrock fails the job.
    const lost = fileStore({
      putJobInput: async (tenant, batchId) => {
        const written = await platform.deps.files.putJobInput(tenant, batchId, new Uint8Array());
        return { ...written, inputUri: written.inputUri.replace('input.jsonl', 'nowhere.jsonl') };
      },
    });
    expect(await runBatchStep(runner({ files: lost }), ref, plenty)).toBe('ran');
    const inference = platform.deps.batchInference as NonNullable<typeof platform.deps.batchInference>;
    const arn = (await platform.deps.batches.get({ tenantId: 'race-job-failed' } as never, id))?.job?.arn as string;
    for (let turn = 0; turn < 50_000 && (await inference.state(arn)).status !== 'Failed'; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ended');
    const { batch, errors, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'failed', request_counts: { total: 100, completed: 0, failed: 100 } });
    expect(batch.errors?.data?.[0]).toMatchObject({ code: 'job_failed', message: expect.stringMatching(/^Failed/) });
    expect(errors).toHaveLength(100);
    expect(billedRequests).toBe(0);
  });

  it("collects a job's output past a record it cannot read, that line reported not run", async () => {
    const { apiKey, openai, id, ref } = await batchOf('race-bad-record', 100, { requestsPerMinute: 1_000 });
    const withGarbage = fileStore({
      jobOutputs: async (...args) => [
        ...(await platform.deps.files.jobOutputs(...args)),
        new TextEncoder().encode('not json\n{"recordId":"9999"}\n'),
      ],
    });
    expect(await runBatchStep(runner(), ref, plenty)).toBe('ran');
    const inference = platform.deps.batchInference as NonNullable<typeof platform.deps.batchInference>;
    const arn = (await platform.deps.batches.get({ tenantId: 'race-bad-record' } as never, id))?.job?.arn as string;
    for (let turn = 0; turn < 50_000 && (await inference.state(arn)).status !== 'Completed'; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await runBatchStep(runner({ files: withGarbage }), ref, plenty)).toBe('ended');
    const { batch, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 100, completed: 100, failed: 0 } });
    expect(billedRequests).toBe(100);
  });

  it('ends a batch cancelled as its too few job records start it again on demand, the line that failed its reading in the error file', async () => {
    const tenantId = 'race-cancel-fallback';
    const { apiKey } = await onboard(platform, tenantId, { limits: { requestsPerMinute: 10 } });
    const openai = client(apiKey);
    // One line asks for more than the model gives: 99 records, under Bedrock's least.
    const rows = chatLines(100).split('\n');
    rows[0] = rows[0].replace('"max_tokens":16', '"max_tokens":999999');
    const input = await openai.files.create({
      file: await toFile(Buffer.from(rows.join('\n')), 'l.jsonl'),
      purpose: 'batch',
    });
    const { id } = await openai.batches.create({
      input_file_id: input.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    });
    const ref = { kind: 'batch' as const, tenantId, batchId: id };
    // The cancel comes just before the write that starts it again on demand.
    let cancelled = false;
    const cancelling = batchStore({
      update: async (tenant, batch) => {
        if (!batch.job && !cancelled) {
          cancelled = true;
          await openai.batches.cancel(id);
        }
        return platform.deps.batches.update(tenant, batch);
      },
    });
    expect(await runBatchStep(runner({ batches: cancelling }), ref, plenty)).toBe('ended');
    expect(cancelled).toBe(true);

    const { batch, errors, billedRequests } = await outcome(apiKey, openai, id);
    expect(batch).toMatchObject({ status: 'cancelled', request_counts: { total: 100, completed: 0, failed: 1 } });
    expect(errors.find((line) => line.custom_id === 'request-0')).toMatchObject({ response: { status_code: 400 } });
    expect(errors).toHaveLength(100);
    expect(billedRequests).toBe(0);
  });

  it('deletes the parts of a batch whose ending step crashed after its last write, at the next delivery', async () => {
    const { id, ref } = await batchOf('race-clean-up', 3, { requestsPerMinute: 100 });
    const tenant = { tenantId: 'race-clean-up' } as Parameters<typeof platform.deps.batches.get>[0];
    let names: readonly string[] = [];
    const crashing = fileStore({
      deleteParts: async () => {
        names = (await platform.deps.batches.get(tenant, id))?.parts.lines ?? [];
        throw new Error('crashed before the clean-up');
      },
    });
    await expect(runBatchStep(runner({ files: crashing }), ref, plenty)).rejects.toThrow('crashed');
    expect(names).toHaveLength(1);
    // Still there until the step is delivered again, which finds the batch ended and cleans up.
    expect(await platform.deps.files.parts(tenant, id, 'lines', names)).toHaveLength(1);
    expect(await runBatchStep(runner(), ref, plenty)).toBe('dropped: ended before');
    await expect(platform.deps.files.parts(tenant, id, 'lines', names)).rejects.toMatchObject({ name: 'NoSuchKey' });
  });
});
