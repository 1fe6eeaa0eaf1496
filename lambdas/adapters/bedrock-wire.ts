import type {
  ApplyGuardrailCommandInput,
  ApplyGuardrailCommandOutput,
  BedrockRuntimeClient,
  ConverseCommandInput,
  ConverseCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { withSdkRetries } from './retry';
import { awsError, SignedJson, serviceEndpoint } from './signed-json';

/** Tries of a call that failed retryably (throttled, a 5xx, a dropped connection), as the SDK's default. */
const MAX_ATTEMPTS = 3;

/** Each Bedrock Runtime client's lean transport: its region, endpoint and credentials, without its per-call pipeline. */
const transports = new WeakMap<BedrockRuntimeClient, Promise<SignedJson>>();

function transportOf(client: BedrockRuntimeClient): Promise<SignedJson> {
  let transport = transports.get(client);
  if (!transport) {
    transport = (async () => {
      const region = await client.config.region();
      const custom = await client.config.endpoint?.();
      const endpoint = custom
        ? `${custom.protocol}//${custom.hostname}${custom.port ? `:${custom.port}` : ''}${custom.path === '/' ? '' : custom.path}`
        : serviceEndpoint('bedrock-runtime', region);
      return new SignedJson({
        service: 'bedrock',
        region,
        endpoint,
        credentials: () => client.config.credentials(),
        connectionTimeoutMs: 1000,
      });
    })();
    transports.set(client, transport);
  }
  return transport;
}

/**
 * Blobs (an image's or a document's bytes) travel as base64 in the JSON protocol. Read from the
 * holder (`this[key]`): a Buffer's own `toJSON` has already made `value` a `{ type, data }` object.
 */
function blobsAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
}

/**
 * `Converse` in Bedrock Runtime's REST-JSON protocol, through `client`'s region, endpoint and
 * credentials but not its per-call pipeline (`npm run bench -- sdk`: the SDK's costs about 0.3 ms
 * of CPU more a call): the command's input as the SDK sends it, its output as the SDK answers it,
 * Bedrock's errors by name (`upstreamError` reads them), retried when retryable as the SDK does,
 * the signal ending the call as an `AbortError`.
 */
export function converse(
  client: BedrockRuntimeClient,
  input: ConverseCommandInput,
  signal?: AbortSignal,
): Promise<ConverseCommandOutput> {
  const { modelId, ...body } = input;
  return call(client, `/model/${encodeURIComponent(String(modelId))}/converse`, body, signal);
}

/** `ApplyGuardrail`, the same way: a tier's guardrail screening texts on their own. */
export function applyGuardrail(
  client: BedrockRuntimeClient,
  input: ApplyGuardrailCommandInput,
): Promise<ApplyGuardrailCommandOutput> {
  const { guardrailIdentifier, guardrailVersion, ...body } = input;
  const path = `/guardrail/${encodeURIComponent(String(guardrailIdentifier))}/version/${encodeURIComponent(String(guardrailVersion))}/apply`;
  return call(client, path, body);
}

/** One Bedrock Runtime call: the body as JSON (blobs base64), the answer as the SDK has it, or its error by name. */
async function call<Output>(
  client: BedrockRuntimeClient,
  path: string,
  body: object,
  signal?: AbortSignal,
): Promise<Output> {
  const transport = await transportOf(client);
  const json = JSON.stringify(body, blobsAsBase64);
  return withSdkRetries(
    async () => {
      const answer = await transport.post(path, { 'content-type': 'application/json' }, json, signal);
      if (answer.status === 200) return { ...(JSON.parse(answer.text) as Output), $metadata: {} };
      throw awsError(answer, 'Bedrock').error;
    },
    MAX_ATTEMPTS,
    signal,
  );
}
