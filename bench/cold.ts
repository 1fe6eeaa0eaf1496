import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { lambdaEnvironment } from '../contract/environment';
import type { FunctionName } from '../contract/routes';
import { toAuthorizerContext } from '../lambdas/core/tenant';
import { BUNDLE_EXTERNALS, BUNDLE_MAIN_FIELDS, LAZY_MODULES } from '../lib/constructs/platform-function';
import { startLocalPlatform } from '../local/platform';
import { printTable } from './chat';

const run = promisify(execFile);
const ROOT = resolve(__dirname, '..');
/** Runs in a fresh Node process: loads the bundle, invokes it once, prints both times. */
const PROBE = `
const t0 = performance.now();
const { handler } = require(process.env.BUNDLE);
const t1 = performance.now();
const context = { awsRequestId: 'cold', getRemainingTimeInMillis: () => 30000 };
// A streaming handler (event, responseStream, context) writes its answer to a stream.
const out = new (require('node:stream').PassThrough)();
let streamed = '';
out.on('data', (chunk) => (streamed += chunk));
const event = JSON.parse(process.env.EVENT);
(handler.length === 3 ? handler(event, out, context).then(() => streamed) : handler(event, context))
  .then((result) => result, (error) => ({ error: String(error && error.message) }))
  .then((result) => console.log(JSON.stringify({ loadMs: t1 - t0, invokeMs: performance.now() - t1, result })));
`;

/**
 * `npm run bench -- cold`: each handler bundled as `cdk synth` bundles it (the AWS SDK left to the
 * runtime, here node_modules), loaded in a fresh Node process and invoked once against the local
 * servers: the cost of a cold start before any work, and of its first request.
 */
export async function benchCold(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-cold-'));
  const platform = await startLocalPlatform({ dataDir, port: 0, persist: false });
  try {
    const admin = { credential: platform.operatorToken };
    const post = (path: string, body: unknown) =>
      fetch(`${platform.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin.credential}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then((response) => response.json() as Promise<Record<string, string>>);
    await post('/admin/tenants', { id: 'cold-co', tier: 'standard' });
    const apiKey = (await post('/admin/tenants/cold-co/api-keys', {})).api_key;
    const record = await platform.deps.registry.getTenant('cold-co');
    if (!record) throw new Error('onboarding failed');
    const authorizer = toAuthorizerContext({ ...record, principal: { type: 'api_key', id: 'cold' } });
    const api = (method: string, resource: string, body?: unknown) => ({
      httpMethod: method,
      resource,
      path: resource,
      headers: { 'content-type': 'application/json' },
      queryStringParameters: null,
      pathParameters: resource.includes('{id}') ? { id: 'cold-co' } : null,
      body: body === undefined ? null : JSON.stringify(body),
      isBase64Encoded: false,
      requestContext: { requestId: 'cold', authorizer },
    });
    // A first request each: real reads and writes on the local servers, no model call (the local
    // Bedrock speaks HTTP/1.1, the Lambda's SDK HTTP/2), so a refused body where a model would run.
    const events: Record<FunctionName, unknown> = {
      authorizer: {
        type: 'REQUEST',
        methodArn: 'arn:aws:execute-api:local:000000000000:api/prod/GET/v1/usage',
        headers: { Authorization: `Bearer ${apiKey}` },
      },
      'chat-completions': api('POST', '/v1/chat/completions', { model: 'nova-micro', messages: [] }),
      embeddings: api('POST', '/v1/embeddings', { model: 'titan-embed-text-v2', input: [] }),
      documents: api('GET', '/v1/documents'),
      retrieve: api('POST', '/v1/retrieve', { query: '' }),
      usage: api('GET', '/v1/usage'),
      models: api('GET', '/v1/models'),
      audit: api('GET', '/v1/audit'),
      sessions: api('GET', '/v1/sessions/{id}'),
      admin: api('GET', '/admin/tenants/{id}'),
      'budget-alerts': { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} },
      'ingest-worker': {
        Records: [
          {
            messageId: 'cold',
            body: JSON.stringify({
              tenantId: 'cold-co',
              principal: { type: 'api_key', id: 'cold' },
              documentId: 'none',
              version: 'v',
              requestId: 'cold',
              batch: 0,
            }),
          },
        ],
      },
      offboarding: { step: 'tombstone', tenantId: 'cold-co' },
      placement: { step: 'switch', tenantId: 'cold-co' },
      'adapter-workflow': { tenantId: 'cold-co', name: 'none' },
    };
    const env = {
      ...process.env,
      ...lambdaEnvironment(platform.deps.settings),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: platform.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: platform.credentials.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: platform.endpoints.dynamodb,
      AWS_ENDPOINT_URL_STS: platform.endpoints.sts,
      AWS_ENDPOINT_URL_SQS: platform.endpoints.sqs,
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      // The bundles leave the SDK to the runtime; here the runtime's copy is node_modules.
      NODE_PATH: join(ROOT, 'node_modules'),
    };
    const rows: string[][] = [];
    for (const [name, event] of Object.entries(events) as [FunctionName, unknown][]) {
      const bundle = join(dataDir, `${name}.js`);
      await build({
        entryPoints: [join(ROOT, 'lambdas', 'handlers', `${name}.ts`)],
        bundle: true,
        minify: true,
        platform: 'node',
        target: 'node22',
        format: 'cjs',
        mainFields: BUNDLE_MAIN_FIELDS,
        // The lazy modules as the asset has them apart, here found in node_modules (none is loaded by these requests).
        external: [...BUNDLE_EXTERNALS, ...LAZY_MODULES],
        supported: { 'dynamic-import': false },
        outfile: bundle,
        logLevel: 'error',
      });
      const { stdout } = await run(process.execPath, ['-e', PROBE], {
        env: { ...env, BUNDLE: bundle, EVENT: JSON.stringify(event), POWERTOOLS_SERVICE_NAME: name },
      });
      const probe = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
      const answer = probe.result?.statusCode ?? (probe.result?.error ? 'error' : 'ok');
      rows.push([
        name,
        String(Math.round(statSync(bundle).size / 1024)),
        probe.loadMs.toFixed(1),
        probe.invokeMs.toFixed(1),
        (probe.loadMs + probe.invokeMs).toFixed(1),
        String(answer),
      ]);
    }
    printTable(['handler', 'bundle KB', 'load ms', 'first invocation ms', 'total ms', 'answer'], rows);
    console.log(
      '\nEach bundle built as `cdk synth` builds it, in a fresh Node process: load = require() of the bundle and of the SDK it uses; first invocation = building its adapters and one request against the local servers (STS, DynamoDB). Target: under 150 ms each.',
    );
  } finally {
    await platform.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
