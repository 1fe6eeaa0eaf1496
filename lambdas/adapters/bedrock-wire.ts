import type {
  BedrockRuntimeClient,
  ConverseCommandInput,
  ConverseCommandOutput,
} from '@aws-sdk/client-bedrock-runtime';
import { withSdkRetries } from './retry';
import { awsError, SignedJson, serviceEndpoint } from './signed-json';

/** Tries of a `Converse` that failed retryably (throttled, a 5xx, a dropped connection), as the SDK's default. */
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

/** Blobs (an image's or a document's bytes) travel as base64 in the JSON protocol. */
const blobsAsBase64 = (_key: string, value: unknown) =>
  value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;

/**
 * `Converse` in Bedrock Runtime's REST-JSON protocol, through `client`'s region, endpoint and
 * credentials but not its per-call pipeline (`npm run bench -- sdk`: the SDK's costs about 0.3 ms
 * of CPU more a call): the command's input as the SDK sends it, its output as the SDK answers it,
 * Bedrock's errors by name (`upstreamError` reads them), retried when retryable as the SDK does,
 * the signal ending the call as an `AbortError`.
 */
export async function converse(
  client: BedrockRuntimeClient,
  input: ConverseCommandInput,
  signal?: AbortSignal,
): Promise<ConverseCommandOutput> {
  const transport = await transportOf(client);
  const { modelId, ...body } = input;
  const path = `/model/${encodeURIComponent(String(modelId))}/converse`;
  const json = JSON.stringify(body, blobsAsBase64);
  return withSdkRetries(
    async () => {
      const answer = await transport.post(path, { 'content-type': 'application/json' }, json, signal);
      if (answer.status === 200) return { ...(JSON.parse(answer.text) as ConverseCommandOutput), $metadata: {} };
      throw awsError(answer, 'Bedrock').error;
    },
    MAX_ATTEMPTS,
    signal,
  );
}
