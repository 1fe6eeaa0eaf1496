import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as z from 'zod';
import { TENANT_SESSION_TAG } from '../contract/iam';
import type { GuardrailPolicy } from '../contract/safety';
import { TENANT_COST_TAG } from '../contract/tenancy';
import { parseJson } from '../lambdas/core/json';
import { countTokens } from '../lambdas/core/tokens';
import {
  eventStreamException,
  eventStreamMessage,
  failAsAws,
  localServer,
  readBody,
  remember,
  sendAwsError,
  sigV4Scope,
  words,
} from './aws-wire';
import { type LocalInvocation, localBatchJobs } from './bedrock-batch-jobs';
import { assessLocally } from './guardrail';
import { localEmbedding } from './local-embedder';
import {
  type LocalBlock,
  type LocalModelInput,
  type LocalModelOutput,
  localInputParts,
  localModel,
} from './local-model';
import type { ModelFault } from './model-faults';
import type { LocalServiceObjects } from './s3-server';
import type { LocalSts } from './sts-server';

const cachePoint = z.object({ cachePoint: z.object({ type: z.literal('default') }).strict() }).strict();
const textBlock = z.object({ text: z.string() }).strict();
const systemBlocks = z.array(z.union([textBlock, cachePoint])).min(1);
/** A JSON object, as Converse's `Document` inputs must be. */
const documentObject = z.record(z.string(), z.unknown());
const toolUseBlock = z
  .object({
    toolUse: z
      .object({ toolUseId: z.string().min(1).max(64), name: z.string().min(1), input: documentObject })
      .strict(),
  })
  .strict();
const toolResultBlock = z
  .object({
    toolResult: z
      .object({
        toolUseId: z.string().min(1).max(64),
        content: z.array(z.union([textBlock, z.object({ json: z.unknown() }).strict()])).min(1),
        status: z.enum(['success', 'error']).optional(),
      })
      .strict(),
  })
  .strict();
const contentBlocks = z.array(z.union([textBlock, toolUseBlock, toolResultBlock, cachePoint])).min(1);

/** `guardrailConfig` of Converse and ConverseStream. */
const guardrailConfigSchema = z
  .object({
    guardrailIdentifier: z.string().min(1),
    guardrailVersion: z.string().min(1),
    trace: z.enum(['enabled', 'disabled', 'enabled_full']).optional(),
    streamProcessingMode: z.enum(['sync', 'async']).optional(),
  })
  .strict();

const toolSpec = z
  .object({
    toolSpec: z
      .object({
        name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
        description: z.string().min(1).optional(),
        inputSchema: z.object({ json: documentObject }).strict(),
      })
      .strict(),
  })
  .strict();
const toolConfigSchema = z
  .object({
    tools: z.array(z.union([toolSpec, cachePoint])).min(1),
    toolChoice: z
      .union([
        z.object({ auto: z.object({}).strict() }).strict(),
        z.object({ any: z.object({}).strict() }).strict(),
        z.object({ tool: z.object({ name: z.string().min(1) }).strict() }).strict(),
      ])
      .optional(),
  })
  .strict();

type ConverseRequest = z.infer<typeof converseRequestSchema>;

/** Turns as Bedrock takes them: a user's first, then alternating. */
const alternating = <T extends { role: 'user' | 'assistant' }>(messages: readonly T[]) =>
  messages.every((m, i) => m.role === (i % 2 === 0 ? 'user' : 'assistant'));
const ALTERNATING = 'A conversation must start with a user message and alternate between user and assistant roles.';

/** The `Converse` request subset the platform sends; anything else is a ValidationException, so adapter drift fails loudly. */
const converseRequestSchema = z
  .object({
    messages: z
      .array(z.object({ role: z.enum(['user', 'assistant']), content: contentBlocks }).strict())
      .min(1)
      .refine(alternating, { message: ALTERNATING }),
    system: systemBlocks.optional(),
    toolConfig: toolConfigSchema.optional(),
    inferenceConfig: z
      .object({
        maxTokens: z.number().int().min(1),
        temperature: z.number().min(0).max(1).optional(),
        topP: z.number().min(0).max(1).optional(),
        stopSequences: z.array(z.string().min(1)).max(4).optional(),
      })
      .strict()
      .optional(),
    guardrailConfig: guardrailConfigSchema.optional(),
  })
  .strict();

/** What Bedrock checks beyond the shape: tool blocks need a tool configuration, and each result answers the turn before. */
function toolTurnProblem(request: ConverseRequest): string | undefined {
  const tools = (request.toolConfig?.tools ?? []).flatMap((t) => ('toolSpec' in t ? [t.toolSpec.name] : []));
  const choice = request.toolConfig?.toolChoice;
  if (choice && 'tool' in choice && !tools.includes(choice.tool.name)) {
    return `The tool ${choice.tool.name} named in toolChoice is not in toolConfig.`;
  }
  let asked = new Set<string>();
  for (const message of request.messages) {
    for (const block of message.content) {
      if (('toolUse' in block || 'toolResult' in block) && !request.toolConfig) {
        return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
      }
      if ('toolResult' in block && !asked.has(block.toolResult.toolUseId)) {
        return 'The number of toolResult blocks exceeds the number of toolUse blocks of the previous turn.';
      }
    }
    asked = new Set(message.content.flatMap((b) => ('toolUse' in b ? [b.toolUse.toolUseId] : [])));
  }
  return undefined;
}

/** `ApplyGuardrail`'s body. */
const applyGuardrailRequestSchema = z
  .object({
    source: z.enum(['INPUT', 'OUTPUT']),
    content: z.array(z.object({ text: z.object({ text: z.string() }).strict() }).strict()).min(1),
  })
  .strict();

/** Amazon Nova's own `InvokeModel` body ("messages-v1"), its text subset: what a batch record holds for Nova. */
const novaInvokeRequestSchema = z
  .object({
    schemaVersion: z.literal('messages-v1').optional(),
    system: z.array(textBlock).min(1).optional(),
    messages: z
      .array(z.object({ role: z.enum(['user', 'assistant']), content: z.array(textBlock).min(1) }).strict())
      .min(1)
      .refine(alternating, { message: ALTERNATING }),
    inferenceConfig: z
      .object({
        maxTokens: z.number().int().min(1).optional(),
        temperature: z.number().min(0).max(1).optional(),
        topP: z.number().min(0).max(1).optional(),
        topK: z.number().int().min(0).optional(),
        stopSequences: z.array(z.string().min(1)).max(4).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/** Titan Text Embeddings V2's `InvokeModel` body. */
const titanEmbeddingRequestSchema = z
  .object({
    inputText: z.string().min(1).max(50_000),
    dimensions: z.union([z.literal(256), z.literal(512), z.literal(1024)]).default(1024),
    normalize: z.boolean().default(true),
    embeddingTypes: z.array(z.literal('float')).optional(),
  })
  .strict();

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

/** An application inference profile of the local control plane. */
export interface LocalInferenceProfile {
  readonly name: string;
  /** The model it copies: what calls through it run. */
  readonly modelId: string;
  readonly tags: Readonly<Record<string, string>>;
}

/** `CreateInferenceProfile`'s body (the subset the platform sends). */
const createInferenceProfileSchema = z
  .object({
    inferenceProfileName: z
      .string()
      .regex(/^([0-9a-zA-Z][ _-]?)+$/)
      .max(64),
    description: z.string().max(200).optional(),
    clientRequestToken: z.string().optional(),
    modelSource: z.object({ copyFrom: z.string().startsWith('arn:') }).strict(),
    tags: z.array(z.object({ key: z.string().min(1), value: z.string() }).strict()).optional(),
  })
  .strict();

export interface LocalBedrockServer {
  readonly endpoint: string;
  /** Application inference profiles by ARN: what the control plane made and not yet deleted. */
  readonly inferenceProfiles: ReadonlyMap<string, LocalInferenceProfile>;
  /** Every request received, newest last: tests assert the exact wire requests. */
  readonly requests: RecordedRequest[];
  /**
   * Tests only: how `Converse` misbehaves, until told otherwise. `hang`: never answer (the client
   * must give up); `refuse`: a ValidationException, as Bedrock gives an input too long for the
   * model; `extraInputTokens`: report more input than the local model counted.
   */
  misbehave(mode: ConverseMisbehaviour | undefined): void;
  /** The faults models show (by Bedrock model id), until changed: `LOCAL_MODEL_FAULTS` and its route. Batch jobs show none. */
  readonly modelFaults: Map<string, ModelFault>;
  close(): Promise<void>;
}

export interface ConverseMisbehaviour {
  /** `ConverseStream` waits for this before each word after the first: tests cut a stream midway. */
  readonly streamGate?: () => Promise<void>;
  /** `ApplyGuardrail` on an output waits for this: tests see what a stream sends before its screening ends. */
  readonly outputGuardrailGate?: () => Promise<void>;
  /** `ConverseStream` fails after this many words with an internal server error event. */
  readonly failStreamAfterWords?: number;
  /** A batch job waits for this before each record: tests stop a job midway. */
  readonly batchGate?: () => Promise<void>;
  readonly hang?: boolean;
  readonly refuse?: boolean;
  readonly extraInputTokens?: number;
}

/** A system-defined cross-region inference profile's id: a geography, then the model id. */
const SYSTEM_PROFILE = /^(?:us|eu|apac|global)\.(.+)$/;

/**
 * Speaks the Bedrock Runtime `Converse` protocol (`POST /model/{modelId}/converse`) for the model
 * ids it is given, backed by the local model; and the control plane's inference profiles and
 * batch inference jobs, whose records the same local model runs.
 */
export async function startLocalBedrock(options: {
  /** Served by `Converse`. */
  chatModelIds: readonly string[];
  /** Served by `InvokeModel` with the Titan Text Embeddings V2 body. */
  embeddingModelIds: readonly string[];
  port?: number;
  /** `ConverseStream` waits this long between words, as a model generating would (0: next turn). */
  wordDelayMs?: number;
  /** Models with a prompt cache, and the shortest prefix each caches, in tokens: cache points elsewhere are refused. */
  promptCacheMinTokens?: Readonly<Record<string, number>>;
  /** Guardrails by id: their version and policy, enforced by `Converse` and `ApplyGuardrail` (a deterministic subset). */
  guardrails?: Readonly<Record<string, { version: string; policy: GuardrailPolicy }>>;
  /**
   * Given, a call through a tenant's inference profile must be signed by a session it issued whose
   * `tenantId` tag is the profile's (the tenant role's tag condition); absent, anyone may call.
   */
  sts?: Pick<LocalSts, 'signedBy'>;
  /** The region it stands for: its profiles' ARNs name it, and a profile of another region is not called here. */
  region?: string;
  /**
   * The application inference profiles of its account and region, when another plane's server in
   * the same region made them first (a silo in the pool's region calls the profiles the pool made).
   */
  inferenceProfiles?: Map<string, LocalInferenceProfile>;
  /** The buckets batch jobs read and write, by name, as their service role reaches them; absent: none. */
  batchStorage?: Readonly<Record<string, LocalServiceObjects>>;
  /** Bedrock's quota of records a batch job needs at least. @default 100 */
  batchMinRecords?: number;
}): Promise<LocalBedrockServer> {
  const requests: RecordedRequest[] = [];
  const region = options.region ?? 'us-east-1';
  const inferenceProfiles = options.inferenceProfiles ?? new Map<string, LocalInferenceProfile>();
  let misbehaviour: ConverseMisbehaviour = {};
  const modelFaults = new Map<string, ModelFault>();
  const promptCache = localPromptCache();
  /**
   * The model a name calls: an application inference profile's copied model (Bedrock in one region
   * knows no profile of another's), a system-defined cross-region profile's (`us.<model id>`, whose
   * faults are its own), or the model id itself.
   */
  const resolve = (named: string) => {
    const profile = named.split(':')[3] === region ? inferenceProfiles.get(named) : undefined;
    const crossRegion = SYSTEM_PROFILE.exec(named);
    return { profile, crossRegion, modelId: profile?.modelId ?? crossRegion?.[1] ?? named };
  };
  const batchJobs = localBatchJobs({
    region,
    minRecords: options.batchMinRecords ?? 100,
    storage: options.batchStorage ?? {},
    modelOf: (named) => {
      const { modelId } = resolve(named);
      return [...options.chatModelIds, ...options.embeddingModelIds].includes(modelId) ? modelId : undefined;
    },
    invoker: (modelId) => {
      if (options.embeddingModelIds.includes(modelId)) return titanInvocation;
      if (options.chatModelIds.includes(modelId) && modelId.startsWith('amazon.nova-')) return novaInvocation;
      return undefined;
    },
    gate: () => misbehaviour.batchGate?.(),
  });
  /** The control plane's application inference profiles: create, list, delete. */
  const serveInferenceProfiles = (method: string, url: string, body: unknown, response: ServerResponse) => {
    const answer = (status: number, payload: unknown) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(payload));
    };
    const served = [...options.chatModelIds, ...options.embeddingModelIds];
    if (method === 'POST' && url === '/inference-profiles') {
      const parsed = createInferenceProfileSchema.safeParse(body);
      if (!parsed.success) return sendAwsError(response, 400, 'ValidationException', parsed.error.message);
      const { inferenceProfileName: name, modelSource, tags } = parsed.data;
      const modelId = /^arn:aws:bedrock:[a-z0-9-]+::foundation-model\/(.+)$/.exec(modelSource.copyFrom)?.[1];
      if (!modelId || !served.includes(modelId)) {
        return sendAwsError(response, 400, 'ValidationException', 'The provided model identifier is invalid.');
      }
      if ([...inferenceProfiles.values()].some((profile) => profile.name === name)) {
        return sendAwsError(response, 409, 'ConflictException', `An inference profile named ${name} already exists.`);
      }
      const arn = `arn:aws:bedrock:${region}:000000000000:application-inference-profile/${randomBytes(6).toString('hex')}`;
      inferenceProfiles.set(arn, {
        name,
        modelId,
        tags: Object.fromEntries((tags ?? []).map((tag) => [tag.key, tag.value])),
      });
      return answer(201, { inferenceProfileArn: arn, status: 'ACTIVE' });
    }
    if (method === 'GET' && url.split('?')[0] === '/inference-profiles') {
      const summaries = [...inferenceProfiles.entries()].map(([arn, profile]) => ({
        inferenceProfileName: profile.name,
        inferenceProfileArn: arn,
        inferenceProfileId: arn.split('/')[1],
        models: [{ modelArn: `arn:aws:bedrock:${region}::foundation-model/${profile.modelId}` }],
        status: 'ACTIVE',
        type: 'APPLICATION',
      }));
      return answer(200, { inferenceProfileSummaries: summaries });
    }
    const deleted = /^\/inference-profiles\/([^/?]+)$/.exec(url);
    if (method === 'DELETE' && deleted) {
      const identifier = decodeURIComponent(deleted[1]);
      const arn = [...inferenceProfiles.keys()].find((key) => key === identifier || key.endsWith(`/${identifier}`));
      if (!arn)
        return sendAwsError(response, 404, 'ResourceNotFoundException', 'The inference profile does not exist.');
      inferenceProfiles.delete(arn);
      return answer(200, {});
    }
    return sendAwsError(
      response,
      404,
      'UnknownOperationException',
      'local Bedrock serves create, list and delete of inference profiles only',
    );
  };
  const server: Server = localServer(async (request, response) => {
    const raw = (await readBody(request)).toString('utf8');
    const body = raw ? parseJson(raw) : undefined;
    remember(requests, { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });

    const scope = sigV4Scope(request.headers.authorization);
    if (scope?.service !== 'bedrock') {
      return sendAwsError(
        response,
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    /** The guardrail a request names, or why it cannot be used. */
    const guardrailOf = (id: string, version: string) => {
      const guardrail = options.guardrails?.[id];
      return guardrail && guardrail.version === version ? guardrail.policy : undefined;
    };
    const noGuardrail = () =>
      sendAwsError(
        response,
        400,
        'ValidationException',
        'The guardrail identifier or version provided in the request does not exist.',
      );
    const apply = /^\/guardrail\/([^/]+)\/version\/([^/]+)\/apply$/.exec(request.url ?? '');
    if (request.method === 'POST' && apply) {
      const policy = guardrailOf(decodeURIComponent(apply[1]), decodeURIComponent(apply[2]));
      if (!policy) return noGuardrail();
      const parsed = applyGuardrailRequestSchema.safeParse(body);
      if (!parsed.success) return sendAwsError(response, 400, 'ValidationException', parsed.error.message);
      const texts = parsed.data.content.map((block) => block.text.text);
      if (parsed.data.source === 'OUTPUT') await misbehaviour.outputGuardrailGate?.();
      const assessment = assessLocally(policy, parsed.data.source, texts);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          action: assessment ? 'GUARDRAIL_INTERVENED' : 'NONE',
          outputs: assessment ? [{ text: policy.blockedMessage }] : [],
          assessments: assessment ? [assessment] : [],
          usage: { topicPolicyUnits: 1, contentPolicyUnits: 1, sensitiveInformationPolicyUnits: 1 },
        }),
      );
      return;
    }
    if ((request.url ?? '').startsWith('/inference-profiles')) {
      return serveInferenceProfiles(request.method ?? '', request.url ?? '', body, response);
    }
    if ((request.url ?? '').startsWith('/model-invocation-job')) {
      return batchJobs.serve(request.method ?? '', request.url ?? '', body, response);
    }
    const route = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !route) {
      return sendAwsError(
        response,
        404,
        'UnknownOperationException',
        'local Bedrock serves Converse, ConverseStream and InvokeModel only',
      );
    }
    const named = decodeURIComponent(route[1]);
    const { profile, crossRegion, modelId } = resolve(named);
    if (profile && options.sts) {
      const session = await options.sts.signedBy(request, Buffer.from(raw));
      if (!session || session.tags[TENANT_SESSION_TAG] !== profile.tags[TENANT_COST_TAG]) {
        return sendAwsError(
          response,
          403,
          'AccessDeniedException',
          `not authorized to perform: bedrock:InvokeModel on resource: ${named}: its tenantId tag is not the caller's`,
        );
      }
    }
    const served = route[2] === 'invoke' ? options.embeddingModelIds : options.chatModelIds;
    if (!served.includes(modelId)) {
      return sendAwsError(response, 400, 'ValidationException', 'The provided model identifier is invalid.');
    }
    switch (modelFaults.get(crossRegion ? named : modelId)) {
      case 'throttle':
        return sendAwsError(
          response,
          429,
          'ThrottlingException',
          'Too many requests, please wait before trying again.',
        );
      case 'error':
        return sendAwsError(response, 500, 'InternalServerException', 'The server encountered an internal error.');
      case 'timeout':
        return;
    }
    if (route[2] === 'invoke') {
      const invoked = titanInvocation(body);
      if ('error' in invoked) return sendAwsError(response, 400, 'ValidationException', invoked.error);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(invoked.output));
      return;
    }
    const parsed = converseRequestSchema.safeParse(body);
    if (!parsed.success) return sendAwsError(response, 400, 'ValidationException', issuesOf(parsed.error));
    if (misbehaviour.hang) return;
    if (misbehaviour.refuse) {
      return sendAwsError(response, 400, 'ValidationException', 'Input is too long for requested model.');
    }
    const problem =
      toolTurnProblem(parsed.data) ??
      (options.promptCacheMinTokens?.[modelId] === undefined && JSON.stringify(parsed.data).includes('"cachePoint"')
        ? `Prompt caching is not supported for model ${modelId}.`
        : undefined);
    if (problem) return sendAwsError(response, 400, 'ValidationException', problem);
    const started = Date.now();
    const input = localInput(parsed.data);
    const config = parsed.data.guardrailConfig;
    const policy = config && guardrailOf(config.guardrailIdentifier, config.guardrailVersion);
    if (config && !policy) return noGuardrail();
    // The guardrail on the input's text first (the model is not called when it intervenes), then on the output.
    const inputAssessment =
      policy &&
      assessLocally(policy, 'INPUT', [
        ...input.system,
        ...input.messages.flatMap((m) => m.blocks.flatMap((b) => ('text' in b ? [b.text] : []))),
      ]);
    const generated: LocalModelOutput = inputAssessment
      ? { text: '', toolUses: [], stopReason: 'end_turn', inputTokens: 0, outputTokens: 0 }
      : localModel(input);
    const outputAssessment = policy && !inputAssessment && assessLocally(policy, 'OUTPUT', [generated.text]);
    const intervened = policy && (inputAssessment || outputAssessment);
    const output: LocalModelOutput = intervened
      ? { ...generated, text: policy.blockedMessage, toolUses: [], stopReason: 'guardrail_intervened' }
      : generated;
    const trace =
      config && intervened
        ? {
            guardrail: {
              ...(inputAssessment && { inputAssessment: { [config.guardrailIdentifier]: inputAssessment } }),
              ...(outputAssessment && { outputAssessments: { [config.guardrailIdentifier]: [outputAssessment] } }),
            },
          }
        : undefined;
    const cacheMinTokens = options.promptCacheMinTokens?.[modelId];
    const usage = tokenUsage(
      output.inputTokens + (misbehaviour.extraInputTokens ?? 0),
      output.outputTokens,
      cacheMinTokens === undefined || inputAssessment
        ? undefined
        : promptCache.use(modelId, input, cachePointsOf(parsed.data), cacheMinTokens),
    );
    if (route[2] === 'converse-stream') {
      return streamConverse(output, usage, response, misbehaviour, started, options.wordDelayMs ?? 0, trace);
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        output: { message: { role: 'assistant', content: answerBlocks(output) } },
        stopReason: output.stopReason,
        usage,
        metrics: { latencyMs: Date.now() - started },
        ...(trace && { trace }),
      }),
    );
  }, failAsAws);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    inferenceProfiles,
    misbehave: (mode) => {
      misbehaviour = mode ?? {};
    },
    modelFaults,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A body's problems as Bedrock's ValidationException states them. */
function issuesOf(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
}

/** Titan Text Embeddings V2's `InvokeModel`: on demand and for each record of a batch job. */
function titanInvocation(body: unknown): LocalInvocation {
  const titan = titanEmbeddingRequestSchema.safeParse(body);
  if (!titan.success) return { error: issuesOf(titan.error) };
  const output = localEmbedding(titan.data.inputText, titan.data.dimensions);
  return { output, inputTokens: output.inputTextTokenCount, outputTokens: 0 };
}

/** Nova's `InvokeModel` for a batch record: the local model as `Converse` runs it, its answer in Nova's own shape. */
function novaInvocation(body: unknown): LocalInvocation {
  const nova = novaInvokeRequestSchema.safeParse(body);
  if (!nova.success) return { error: issuesOf(nova.error) };
  const { system, messages, inferenceConfig } = nova.data;
  const input = localInput({ system, messages });
  const output = localModel({
    ...input,
    maxTokens: inferenceConfig?.maxTokens ?? input.maxTokens,
    stop: inferenceConfig?.stopSequences,
  });
  return {
    output: {
      output: { message: { role: 'assistant', content: answerBlocks(output) } },
      stopReason: output.stopReason,
      usage: tokenUsage(output.inputTokens, output.outputTokens),
    },
    inputTokens: output.inputTokens,
    outputTokens: output.outputTokens,
  };
}

/** Converse's input as the local model reads it; text blocks of a turn read as one. */
function localInput(request: ConverseRequest): LocalModelInput {
  const tools = (request.toolConfig?.tools ?? []).flatMap((t) =>
    'toolSpec' in t
      ? [{ name: t.toolSpec.name, description: t.toolSpec.description, schema: t.toolSpec.inputSchema.json }]
      : [],
  );
  const choice = request.toolConfig?.toolChoice;
  return {
    system: (request.system ?? []).flatMap((block) => ('text' in block ? [block.text] : [])),
    messages: request.messages.map((m) => ({
      role: m.role,
      blocks: m.content.flatMap((block): LocalBlock[] => {
        if ('text' in block) return [{ text: block.text }];
        if ('toolUse' in block) {
          const { toolUseId: id, name, input } = block.toolUse;
          return [{ toolUse: { id, name, input } }];
        }
        if ('toolResult' in block) {
          const text = block.toolResult.content.map((c) => ('text' in c ? c.text : JSON.stringify(c.json))).join('\n');
          return [{ toolResult: { id: block.toolResult.toolUseId, text } }];
        }
        return [];
      }),
    })),
    maxTokens: request.inferenceConfig?.maxTokens ?? 512,
    stop: request.inferenceConfig?.stopSequences,
    tools,
    toolChoice: !choice || 'auto' in choice ? 'auto' : 'any' in choice ? 'any' : { name: choice.tool.name },
  };
}

/** The answer's content blocks: its text, then its tool calls. */
function answerBlocks(output: LocalModelOutput) {
  return [
    ...(output.text !== '' || output.toolUses.length === 0 ? [{ text: output.text }] : []),
    ...output.toolUses.map((use) => ({ toolUse: { toolUseId: use.id, name: use.name, input: use.input } })),
  ];
}

/** Converse's usage: input tokens apart from those read from or written to the prompt cache. */
function tokenUsage(inputTokens: number, outputTokens: number, cached?: { read: number; written: number }) {
  const read = cached?.read ?? 0;
  const written = cached?.written ?? 0;
  return {
    inputTokens: inputTokens - read - written,
    outputTokens,
    totalTokens: inputTokens + outputTokens,
    ...(cached && { cacheReadInputTokens: read, cacheWriteInputTokens: written }),
  };
}

/**
 * Bedrock's prompt cache, deterministically: a cache point makes the prefix before it (system,
 * tools, turns, in that order) a cache entry once it holds the model's minimum of tokens. A call
 * reads the longest prefix cached earlier and writes the rest up to its last point. Entries never
 * expire here (Bedrock's live five minutes after their last use).
 */
function localPromptCache() {
  const cached = new Set<string>();
  const tokensOf = (prefix: LocalModelInput) =>
    localInputParts(prefix).reduce((sum, part) => sum + countTokens(part), 0);
  return {
    use(modelId: string, input: LocalModelInput, points: CachePoints, minTokens: number) {
      const prefixes = cachePrefixes(input, points).filter((prefix) => tokensOf(prefix) >= minTokens);
      let read = 0;
      let end = 0;
      for (const prefix of prefixes) {
        const key = createHash('sha256')
          .update(JSON.stringify([modelId, prefix]))
          .digest('hex');
        const tokens = tokensOf(prefix);
        if (cached.has(key)) read = Math.max(read, tokens);
        end = Math.max(end, tokens);
        cached.add(key);
      }
      return { read, written: end - read };
    },
  };
}

/** Where a request's cache points are: after so many system blocks, after the tools, after so many turns. */
interface CachePoints {
  readonly system: readonly number[];
  readonly tools: boolean;
  readonly messages: readonly number[];
}

function cachePointsOf(request: ConverseRequest): CachePoints {
  const after = (blocks: readonly object[]) =>
    blocks.flatMap((block, i) =>
      'cachePoint' in block ? [blocks.slice(0, i).filter((b) => !('cachePoint' in b)).length] : [],
    );
  return {
    system: after(request.system ?? []),
    tools: (request.toolConfig?.tools ?? []).some((tool) => 'cachePoint' in tool),
    messages: request.messages.flatMap((m, i) => (m.content.some((block) => 'cachePoint' in block) ? [i + 1] : [])),
  };
}

/** The prefixes before a request's cache points. */
function cachePrefixes(input: LocalModelInput, points: CachePoints): LocalModelInput[] {
  return [
    ...points.system.map((n) => ({ ...input, system: input.system.slice(0, n), tools: [], messages: [] })),
    ...(points.tools ? [{ ...input, messages: [] }] : []),
    ...points.messages.map((n) => ({ ...input, messages: input.messages.slice(0, n) })),
  ];
}

/**
 * `ConverseStream`'s answer in the event-stream encoding: messageStart, a contentBlockDelta a word
 * (waiting on the test's gate between words, if any), then each tool call as a block of its own
 * (its start, its input in two pieces), contentBlockStop, messageStop, then the metadata event with
 * the usage, as Bedrock sends it.
 */
async function streamConverse(
  output: LocalModelOutput,
  usage: ReturnType<typeof tokenUsage>,
  response: ServerResponse,
  misbehaviour: ConverseMisbehaviour,
  started: number,
  wordDelayMs: number,
  trace?: unknown,
): Promise<void> {
  response.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
  const send = (eventType: string, payload: unknown) => {
    if (!response.destroyed) response.write(eventStreamMessage(eventType, payload));
  };
  send('messageStart', { role: 'assistant' });
  const hasText = output.text !== '' || output.toolUses.length === 0;
  for (const [i, word] of words(output.text).entries()) {
    const pause = () =>
      new Promise((resolve) => (wordDelayMs > 0 ? setTimeout(resolve, wordDelayMs) : setImmediate(resolve)));
    if (i > 0) await (misbehaviour.streamGate?.() ?? pause());
    if (misbehaviour.failStreamAfterWords !== undefined && i >= misbehaviour.failStreamAfterWords) {
      response.end(
        eventStreamException('internalServerException', 'The server encountered an error processing the request.'),
      );
      return;
    }
    send('contentBlockDelta', { contentBlockIndex: 0, delta: { text: word } });
  }
  if (hasText) send('contentBlockStop', { contentBlockIndex: 0 });
  for (const [i, use] of output.toolUses.entries()) {
    const contentBlockIndex = (hasText ? 1 : 0) + i;
    send('contentBlockStart', { contentBlockIndex, start: { toolUse: { toolUseId: use.id, name: use.name } } });
    const json = JSON.stringify(use.input);
    const half = Math.ceil(json.length / 2);
    for (const piece of [json.slice(0, half), json.slice(half)].filter((p) => p !== '')) {
      send('contentBlockDelta', { contentBlockIndex, delta: { toolUse: { input: piece } } });
    }
    send('contentBlockStop', { contentBlockIndex });
  }
  send('messageStop', { stopReason: output.stopReason });
  send('metadata', {
    usage,
    metrics: { latencyMs: Date.now() - started },
    ...(trace !== undefined && { trace }),
  });
  response.end();
}
