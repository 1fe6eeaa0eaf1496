import type { IncomingMessage, ServerResponse } from 'node:http';

/** Reads a request body whole; local servers only ever see small requests. */
export async function readBody(request: IncomingMessage, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** An error as AWS REST-JSON services send it: the type in `x-amzn-errortype`, the message in the body. */
export function sendAwsError(response: ServerResponse, status: number, type: string, message: string): void {
  response.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': type });
  response.end(JSON.stringify({ message }));
}

/** The credential scope of a SigV4 `Authorization` header: access key id, region and service. */
export function sigV4Scope(
  authorization: string | undefined,
): { accessKeyId: string; region: string; service: string } | undefined {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/.exec(
      authorization ?? '',
    );
  return match ? { accessKeyId: match[1], region: match[2], service: match[3] } : undefined;
}
