import type { IncomingHttpHeaders, Server } from 'node:http';
import * as z from 'zod';
import type { AdapterEndpointSettings } from '../contract/adapters';
import { parseJson } from '../lambdas/core/json';
import { countTokens } from '../lambdas/core/tokens';
import {
  eventStreamMessage,
  failAsAws,
  listenLocally,
  localServer,
  readBody,
  remember,
  sendAwsError,
  sigV4Scope,
  words,
} from './aws-wire';
import { argumentWords, type LocalBlock, type LocalModelInput, localModel, valueForSchema } from './local-model';

/** `CreateInferenceComponent` for an adapter: a base component to run on and an artifact, no compute of its own. */
const createAdapterSchema = z
  .object({
    InferenceComponentName: z.string().regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/),
    EndpointName: z.string().min(1),
    Specification: z
      .object({
        BaseInferenceComponentName: z.string().min(1),
        Container: z.object({ ArtifactUrl: z.string().startsWith('s3://') }).strict(),
      })
      .strict(),
    Tags: z.array(z.object({ Key: z.string(), Value: z.string() })).optional(),
  })
  .strict();

const nameSchema = z.object({ InferenceComponentName: z.string().min(1) }).strict();

const toolCallSchema = z
  .object({
    id: z.string().min(1),
    type: z.literal('function'),
    function: z.object({ name: z.string().min(1), arguments: z.string() }).strict(),
  })
  .strict();

/** The container's chat-completions schema (vLLM's OpenAI server), the subset the adapter sends. */
const invokeSchema = z
  .object({
    messages: z
      .array(
        z
          .object({
            role: z.enum(['system', 'user', 'assistant', 'tool']),
            content: z.string(),
            tool_calls: z.array(toolCallSchema).optional(),
            tool_call_id: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
    tools: z
      .array(
        z
          .object({
            type: z.literal('function'),
            function: z
              .object({
                name: z.string().min(1),
                description: z.string().optional(),
                parameters: z.record(z.string(), z.unknown()),
                strict: z.boolean().optional(),
              })
              .strict(),
          })
          .strict(),
      )
      .optional(),
    tool_choice: z
      .union([
        z.enum(['auto', 'none', 'required']),
        z.object({ type: z.literal('function'), function: z.object({ name: z.string() }).strict() }).strict(),
      ])
      .optional(),
    parallel_tool_calls: z.boolean().optional(),
    response_format: z
      .union([
        z.object({ type: z.literal('json_object') }).strict(),
        z
          .object({
            type: z.literal('json_schema'),
            json_schema: z
              .object({ name: z.string(), schema: z.record(z.string(), z.unknown()), strict: z.boolean() })
              .strict(),
          })
          .strict(),
      ])
      .optional(),
    max_tokens: z.number().int().min(1),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    stop: z.array(z.string().min(1)).max(4).optional(),
    stream: z.boolean().optional(),
    stream_options: z.object({ include_usage: z.boolean() }).strict().optional(),
  })
  .strict();

interface Component {
  readonly name: string;
  readonly endpointName: string;
  readonly baseComponentName?: string;
  readonly artifactUrl?: string;
  readonly createdAtMs: number;
  /** Set when its creation fails. */
  readonly failureReason?: string;
}

export interface LocalSageMakerRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
}

export interface LocalSageMaker {
  readonly endpoint: string;
  /** Every request, newest last: tests assert the exact wire requests. */
  readonly requests: LocalSageMakerRequest[];
  /** Tests only: a creation of an adapter whose artifact URL this returns a reason for fails with it. */
  failCreations(reason: ((artifactUrl: string) => string | undefined) | undefined): void;
  close(): Promise<void>;
}

/** How long a new adapter component stays `Creating` before it is `InService` (or `Failed`). */
export const LOCAL_ADAPTER_LOAD_MS = 5_000;

/**
 * The SageMaker subset the platform uses, one server for both of its endpoints: the control plane's
 * JSON 1.1 `Create`, `Describe`, `Delete` and `ListInferenceComponents` (`X-Amz-Target:
 * SageMaker.<op>`), and the runtime's `InvokeEndpoint` (`POST /endpoints/{name}/invocations` with
 * `X-Amzn-SageMaker-Inference-Component`). Base components are in service from the start; an
 * adapter component is `Creating` for `LOCAL_ADAPTER_LOAD_MS` of the platform's clock. The local
 * base model is the local echo model; an adapter prefixes its answer with its artifact's name, so
 * tests see which component answered.
 */
export async function startLocalSageMaker(options: {
  readonly endpoint: AdapterEndpointSettings;
  readonly now: () => number;
}): Promise<LocalSageMaker> {
  const requests: LocalSageMakerRequest[] = [];
  const components = new Map<string, Component>(
    Object.values(options.endpoint.baseComponents).map((name) => [
      name,
      { name, endpointName: options.endpoint.endpointName, createdAtMs: 0 },
    ]),
  );
  let failure: ((artifactUrl: string) => string | undefined) | undefined;

  const statusOf = (component: Component) =>
    options.now() - component.createdAtMs < LOCAL_ADAPTER_LOAD_MS
      ? 'Creating'
      : component.failureReason
        ? 'Failed'
        : 'InService';

  const control: Record<string, (body: unknown) => object> = {
    CreateInferenceComponent: (body) => {
      const input = createAdapterSchema.parse(body);
      if (input.EndpointName !== options.endpoint.endpointName) {
        throw new SageMakerError(`Could not find endpoint "${input.EndpointName}".`);
      }
      if (components.has(input.InferenceComponentName)) {
        throw new SageMakerError(
          `Cannot create already existing inference component "${input.InferenceComponentName}".`,
        );
      }
      const base = components.get(input.Specification.BaseInferenceComponentName);
      if (!base || base.baseComponentName !== undefined) {
        throw new SageMakerError(
          `Could not find base inference component "${input.Specification.BaseInferenceComponentName}".`,
        );
      }
      const artifactUrl = input.Specification.Container.ArtifactUrl;
      components.set(input.InferenceComponentName, {
        name: input.InferenceComponentName,
        endpointName: input.EndpointName,
        baseComponentName: base.name,
        artifactUrl,
        createdAtMs: options.now(),
        failureReason: failure?.(artifactUrl),
      });
      return { InferenceComponentArn: arnOf(input.InferenceComponentName) };
    },
    DescribeInferenceComponent: (body) => {
      const component = existing(nameSchema.parse(body).InferenceComponentName);
      return {
        InferenceComponentName: component.name,
        InferenceComponentArn: arnOf(component.name),
        EndpointName: component.endpointName,
        VariantName: 'AllTraffic',
        InferenceComponentStatus: statusOf(component),
        ...(statusOf(component) === 'Failed' && { FailureReason: component.failureReason }),
        Specification: component.baseComponentName
          ? {
              BaseInferenceComponentName: component.baseComponentName,
              Container: { ArtifactUrl: component.artifactUrl },
            }
          : {},
        CreationTime: component.createdAtMs / 1000,
        LastModifiedTime: component.createdAtMs / 1000,
      };
    },
    DeleteInferenceComponent: (body) => {
      components.delete(existing(nameSchema.parse(body).InferenceComponentName).name);
      return {};
    },
    ListInferenceComponents: (body) => {
      const { EndpointNameEquals } = z.object({ EndpointNameEquals: z.string().optional() }).parse(body ?? {});
      return {
        InferenceComponents: [...components.values()]
          .filter((component) => !EndpointNameEquals || component.endpointName === EndpointNameEquals)
          .map((component) => ({
            InferenceComponentName: component.name,
            InferenceComponentArn: arnOf(component.name),
            EndpointName: component.endpointName,
            VariantName: 'AllTraffic',
            InferenceComponentStatus: statusOf(component),
            CreationTime: component.createdAtMs / 1000,
            LastModifiedTime: component.createdAtMs / 1000,
          })),
      };
    },
  };

  function existing(name: string): Component {
    const component = components.get(name);
    if (!component) throw new SageMakerError(`Could not find inference component "${name}".`);
    return component;
  }

  const server: Server = localServer(async (request, response) => {
    const raw = (await readBody(request)).toString('utf8');
    const body = raw ? parseJson(raw) : undefined;
    remember(requests, { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });
    if (sigV4Scope(request.headers.authorization)?.service !== 'sagemaker') {
      return sendAwsError(
        response,
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    }
    const reply = (status: number, answer: object) => {
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify(answer));
    };
    const target = String(request.headers['x-amz-target'] ?? '');
    if (request.method === 'POST' && request.url === '/' && target.startsWith('SageMaker.')) {
      const operation = control[target.slice('SageMaker.'.length)];
      if (!operation)
        return reply(400, { __type: 'UnknownOperationException', message: `local SageMaker does not serve ${target}` });
      try {
        return reply(200, operation(body));
      } catch (error) {
        const message =
          error instanceof z.ZodError
            ? error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')
            : (error as Error).message;
        return reply(400, { __type: 'ValidationException', message });
      }
    }
    const invoke = /^\/endpoints\/([^/]+)\/(invocations|invocations-response-stream)$/.exec(request.url ?? '');
    if (request.method !== 'POST' || !invoke) {
      return sendAwsError(
        response,
        404,
        'UnknownOperationException',
        'local SageMaker Runtime serves InvokeEndpoint only',
      );
    }
    const componentName = String(request.headers['x-amzn-sagemaker-inference-component'] ?? '');
    const component = components.get(componentName);
    if (
      decodeURIComponent(invoke[1]) !== options.endpoint.endpointName ||
      !component ||
      statusOf(component) !== 'InService'
    ) {
      return sendAwsError(
        response,
        400,
        'ValidationError',
        `Inference component ${componentName} is not in service on this endpoint.`,
      );
    }
    const parsed = invokeSchema.safeParse(body);
    if (!parsed.success) {
      return sendAwsError(
        response,
        424,
        'ModelError',
        'Received client error (400) from primary with message "invalid request".',
      );
    }
    const output = localModel(localInput(parsed.data));
    // An adapter's answer says which adapter it is: what tests check routing by.
    const adapter = component.artifactUrl
      ?.split('/')
      .at(-1)
      ?.replace(/\.tar\.gz$/, '');
    const format = parsed.data.response_format;
    // Guided decoding answers JSON of the format; otherwise an adapter's answer says which adapter it is.
    const text =
      format && output.toolUses.length === 0
        ? answerJson(format, parsed.data.messages.findLast((m) => m.role === 'user')?.content ?? '')
        : adapter && output.text !== ''
          ? `[${adapter}] ${output.text}`
          : output.text;
    const toolCalls = output.toolUses.map((use, index) => ({
      index,
      id: use.id,
      type: 'function' as const,
      function: { name: use.name, arguments: JSON.stringify(use.input) },
    }));
    const usage = {
      prompt_tokens: output.inputTokens,
      completion_tokens: countTokens(text) + output.outputTokens * Number(toolCalls.length > 0),
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const finishReason = toolCalls.length > 0 ? 'tool_calls' : output.stopReason === 'max_tokens' ? 'length' : 'stop';
    if (invoke[2] === 'invocations-response-stream') {
      // The container's server-sent chunks, in PayloadParts cut mid-line: clients must put lines back together.
      response.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      const chunk = (delta: object, finish: string | null, extra: object = {}) =>
        `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
      const sse = [
        ...words(text).map((word, i) =>
          chunk(i === 0 ? { role: 'assistant', content: word } : { content: word }, null),
        ),
        ...toolCalls.flatMap(({ function: { name, arguments: json }, ...call }) => [
          chunk({ tool_calls: [{ ...call, function: { name, arguments: '' } }] }, null),
          chunk({ tool_calls: [{ index: call.index, function: { arguments: json } }] }, null),
        ]),
        chunk({}, finishReason),
        ...(parsed.data.stream_options?.include_usage ? [`data: ${JSON.stringify({ choices: [], usage })}\n\n`] : []),
        'data: [DONE]\n\n',
      ].join('');
      const bytes = Buffer.from(sse);
      for (let at = 0; at < bytes.length; at += 37) {
        response.write(eventStreamMessage('PayloadPart', new Uint8Array(bytes.subarray(at, at + 37))));
      }
      response.end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify({
        id: `chatcmpl-local-${requests.length}`,
        object: 'chat.completion',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: toolCalls.length > 0 && text === '' ? null : text,
              ...(toolCalls.length > 0 && { tool_calls: toolCalls.map(({ index: _, ...call }) => call) }),
            },
            finish_reason: finishReason,
          },
        ],
        usage,
      }),
    );
  }, failAsAws);
  const listening = await listenLocally(server);
  return {
    ...listening,
    requests,
    failCreations: (reason) => {
      failure = reason;
    },
  };
}

class SageMakerError extends Error {}

function arnOf(name: string): string {
  return `arn:aws:sagemaker:us-east-1:000000000000:inference-component/${name}`;
}

type InvokeBody = z.infer<typeof invokeSchema>;

/** The OpenAI chat body as the local model reads it; `tool_choice: none` offers no tools. */
function localInput(body: InvokeBody): LocalModelInput {
  const choice = body.tool_choice ?? 'auto';
  const tools =
    choice === 'none'
      ? []
      : (body.tools ?? []).map(({ function: f }) => ({
          name: f.name,
          description: f.description,
          schema: f.parameters,
        }));
  const messages: { role: 'user' | 'assistant'; blocks: LocalBlock[] }[] = [];
  for (const message of body.messages.filter((m) => m.role !== 'system')) {
    const role = message.role === 'assistant' ? 'assistant' : 'user';
    const blocks: LocalBlock[] =
      message.role === 'tool'
        ? [{ toolResult: { id: message.tool_call_id ?? '', text: message.content } }]
        : [
            ...(message.content !== '' ? [{ text: message.content }] : []),
            ...(message.tool_calls ?? []).map((call) => ({
              toolUse: { id: call.id, name: call.function.name, input: parseOr(call.function.arguments) },
            })),
          ];
    const previous = messages.at(-1);
    if (previous?.role === role) previous.blocks.push(...blocks);
    else messages.push({ role, blocks });
  }
  return {
    system: body.messages.filter((m) => m.role === 'system').map((m) => m.content),
    messages,
    maxTokens: body.max_tokens,
    stop: body.stop,
    tools,
    toolChoice: typeof choice === 'object' ? { name: choice.function.name } : choice === 'required' ? 'any' : 'auto',
  };
}

function parseOr(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return {};
  }
}

/** What guided decoding makes of a request: JSON valid against the requested schema (or an object), from the user's words. */
function answerJson(format: NonNullable<InvokeBody['response_format']>, said: string): string {
  if (format.type === 'json_object') return JSON.stringify({ said });
  const { name, schema } = format.json_schema;
  return JSON.stringify(valueForSchema(schema, argumentWords(said, { name, schema })));
}
