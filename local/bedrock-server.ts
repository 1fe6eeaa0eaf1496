import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as z from 'zod';
import type { GuardrailPolicy } from '../contract/safety';
import { parseJson } from '../lambdas/core/json';
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
import { assessLocally } from './guardrail';
import { localEmbedding } from './local-embedder';
import { type LocalModelOutput, localModel } from './local-model';

const textBlocks = z.array(z.object({ text: z.string() }).strict()).min(1);

/** The `Converse` request subset the platform sends; anything else is a ValidationException, so adapter drift fails loudly. */
/** `guardrailConfig` of Converse and ConverseStream. */
const guardrailConfigSchema = z
  .object({
    guardrailIdentifier: z.string().min(1),
    guardrailVersion: z.string().min(1),
    trace: z.enum(['enabled', 'disabled', 'enabled_full']).optional(),
    streamProcessingMode: z.enum(['sync', 'async']).optional(),
  })
  .strict();

const converseRequestSchema = z
  .object({
    messages: z
      .array(z.object({ role: z.enum(['user', 'assistant']), content: textBlocks }).strict())
      .min(1)
      .refine((messages) => messages.every((m, i) => m.role === (i % 2 === 0 ? 'user' : 'assistant')), {
        message: 'A conversation must start with a user message and alternate between user and assistant roles.',
      }),
    system: textBlocks.optional(),
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

/** `ApplyGuardrail`'s body. */
const applyGuardrailRequestSchema = z
  .object({
    source: z.enum(['INPUT', 'OUTPUT']),
    content: z.array(z.object({ text: z.object({ text: z.string() }).strict() }).strict()).min(1),
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
  close(): Promise<void>;
}

export interface ConverseMisbehaviour {
  /** `ConverseStream` waits for this before each word after the first: tests cut a stream midway. */
  readonly streamGate?: () => Promise<void>;
  /** `ConverseStream` fails after this many words with an internal server error event. */
  readonly failStreamAfterWords?: number;
  readonly hang?: boolean;
  readonly refuse?: boolean;
  readonly extraInputTokens?: number;
}

/**
 * Speaks the Bedrock Runtime `Converse` protocol (`POST /model/{modelId}/converse`) for the model
 * ids it is given, backed by the local model.
 */
export async function startLocalBedrock(options: {
  /** Served by `Converse`. */
  chatModelIds: readonly string[];
  /** Served by `InvokeModel` with the Titan Text Embeddings V2 body. */
  embeddingModelIds: readonly string[];
  port?: number;
  /** `ConverseStream` waits this long between words, as a model generating would (0: next turn). */
  wordDelayMs?: number;
  /** Guardrails by id: their version and policy, enforced by `Converse` and `ApplyGuardrail` (a deterministic subset). */
  guardrails?: Readonly<Record<string, { version: string; policy: GuardrailPolicy }>>;
}): Promise<LocalBedrockServer> {
  const requests: RecordedRequest[] = [];
  const inferenceProfiles = new Map<string, LocalInferenceProfile>();
  let misbehaviour: ConverseMisbehaviour = {};
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
      const arn = `arn:aws:bedrock:us-east-1:000000000000:application-inference-profile/${randomBytes(6).toString('hex')}`;
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
        models: [{ modelArn: `arn:aws:bedrock:us-east-1::foundation-model/${profile.modelId}` }],
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
    const route = /^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !route) {
      return sendAwsError(
        response,
        404,
        'UnknownOperationException',
        'local Bedrock serves Converse, ConverseStream and InvokeModel only',
      );
    }
    // A call through an application inference profile runs the model the profile copies.
    const named = decodeURIComponent(route[1]);
    const modelId = inferenceProfiles.get(named)?.modelId ?? named;
    const served = route[2] === 'invoke' ? options.embeddingModelIds : options.chatModelIds;
    if (!served.includes(modelId)) {
      return sendAwsError(response, 400, 'ValidationException', 'The provided model identifier is invalid.');
    }
    const invalid = (error: z.ZodError) =>
      sendAwsError(
        response,
        400,
        'ValidationException',
        error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    if (route[2] === 'invoke') {
      const titan = titanEmbeddingRequestSchema.safeParse(body);
      if (!titan.success) return invalid(titan.error);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(localEmbedding(titan.data.inputText, titan.data.dimensions)));
      return;
    }
    const parsed = converseRequestSchema.safeParse(body);
    if (!parsed.success) return invalid(parsed.error);
    if (misbehaviour.hang) return;
    if (misbehaviour.refuse) {
      return sendAwsError(response, 400, 'ValidationException', 'Input is too long for requested model.');
    }
    const started = Date.now();
    const system = (parsed.data.system ?? []).map((block) => block.text);
    const messages = parsed.data.messages.map((m) => ({
      role: m.role,
      text: m.content.map((block) => block.text).join('\n'),
    }));
    const config = parsed.data.guardrailConfig;
    const policy = config && guardrailOf(config.guardrailIdentifier, config.guardrailVersion);
    if (config && !policy) return noGuardrail();
    // The guardrail on the input first (the model is not called when it intervenes), then on the output.
    const inputAssessment = policy && assessLocally(policy, 'INPUT', [...system, ...messages.map((m) => m.text)]);
    const generated: LocalModelOutput = inputAssessment
      ? { text: '', stopReason: 'end_turn', inputTokens: 0, outputTokens: 0 }
      : localModel({
          system,
          messages,
          maxTokens: parsed.data.inferenceConfig?.maxTokens ?? 512,
          stop: parsed.data.inferenceConfig?.stopSequences,
        });
    const outputAssessment = policy && !inputAssessment && assessLocally(policy, 'OUTPUT', [generated.text]);
    const intervened = policy && (inputAssessment || outputAssessment);
    const output: LocalModelOutput = intervened
      ? { ...generated, text: policy.blockedMessage, stopReason: 'guardrail_intervened' }
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
    if (route[2] === 'converse-stream') {
      return streamConverse(output, response, misbehaviour, started, options.wordDelayMs ?? 0, trace);
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        output: { message: { role: 'assistant', content: [{ text: output.text }] } },
        stopReason: output.stopReason,
        usage: {
          inputTokens: output.inputTokens + (misbehaviour.extraInputTokens ?? 0),
          outputTokens: output.outputTokens,
          totalTokens: output.inputTokens + (misbehaviour.extraInputTokens ?? 0) + output.outputTokens,
        },
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
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `ConverseStream`'s answer in the event-stream encoding: messageStart, a contentBlockDelta a word
 * (waiting on the test's gate between words, if any), contentBlockStop, messageStop, then the
 * metadata event with the usage, as Bedrock sends it.
 */
async function streamConverse(
  output: LocalModelOutput,
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
  send('contentBlockStop', { contentBlockIndex: 0 });
  send('messageStop', { stopReason: output.stopReason });
  send('metadata', {
    usage: {
      inputTokens: output.inputTokens,
      outputTokens: output.outputTokens,
      totalTokens: output.inputTokens + output.outputTokens,
    },
    metrics: { latencyMs: Date.now() - started },
    ...(trace !== undefined && { trace }),
  });
  response.end();
}
