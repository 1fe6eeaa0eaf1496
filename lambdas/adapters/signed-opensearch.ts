import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity } from '@smithy/types';

/** An OpenSearch error answer: its status and the error type OpenSearch named. */
export class OpenSearchRequestError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
  ) {
    super(`OpenSearch answered ${status} ${type}`);
    this.name = 'OpenSearchRequestError';
  }
}

/**
 * The few OpenSearch REST calls the vector index makes, SigV4-signed for `es` with the caller's
 * credentials and sent with `fetch`. Written here rather than taken from
 * `@opensearch-project/opensearch`, whose client (about 300 KB bundled, and CommonJS, so a bundler
 * keeps all of it) is most of a Lambda bundle, for seven requests.
 */
export class SignedOpenSearch {
  private readonly signer: SignatureV4;
  private readonly url: URL;

  constructor(endpoint: string, region: string, credentials: () => Promise<AwsCredentialIdentity>) {
    this.url = new URL(endpoint);
    this.signer = new SignatureV4({ credentials, region, service: 'es', sha256: Hash.bind(null, 'sha256') });
  }

  /** The parsed JSON answer of a 2xx; an `OpenSearchRequestError` otherwise. */
  async request<T>(
    method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    options: { query?: Record<string, string>; body?: unknown; ndjson?: readonly unknown[] } = {},
  ): Promise<T> {
    const body =
      options.ndjson !== undefined
        ? options.ndjson.map((line) => `${JSON.stringify(line)}\n`).join('')
        : options.body === undefined
          ? undefined
          : JSON.stringify(options.body);
    const signed = await this.signer.sign({
      method,
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      port: this.url.port ? Number(this.url.port) : undefined,
      path,
      query: options.query ?? {},
      headers: {
        host: this.url.host,
        ...(body !== undefined && {
          'content-type': options.ndjson ? 'application/x-ndjson' : 'application/json',
        }),
      },
      body,
    });
    const search = new URLSearchParams(options.query ?? {}).toString();
    const response = await fetch(`${this.url.origin}${path}${search ? `?${search}` : ''}`, {
      method,
      headers: signed.headers,
      body,
    });
    const text = method === 'HEAD' ? '' : await response.text();
    if (!response.ok) throw new OpenSearchRequestError(response.status, errorType(text));
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Whether the index exists (`HEAD /<index>`). */
  async exists(index: string): Promise<boolean> {
    try {
      await this.request('HEAD', `/${index}`);
      return true;
    } catch (error) {
      if (error instanceof OpenSearchRequestError && error.status === 404) return false;
      throw error;
    }
  }
}

function errorType(text: string): string {
  try {
    return String((JSON.parse(text) as { error?: { type?: unknown } }).error?.type ?? 'unknown');
  } catch {
    return 'unknown';
  }
}
