import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LAZY_MODULES } from '../../lib/constructs/platform-function';
import { budget, synthesized } from './synthesized';

type Fn = { Properties: { Environment: { Variables: Record<string, unknown> } }; Metadata: Record<string, string> };

/** Each function's bundle, as `cdk synth` writes it: small enough to load fast on a cold start. */
describe('Lambda bundles', () => {
  // GIVEN the stack synthesized with bundling, as `cdk synth` does it, once (see synthesized.ts)
  let assembly: { directory: string };
  let functions: Fn[];
  let sizes: Record<string, number>;
  beforeAll(async () => {
    const bundled = await synthesized('bundled');
    assembly = bundled;
    functions = Object.values(bundled.template('Bundled').findResources('AWS::Lambda::Function')) as Fn[];
    sizes = Object.fromEntries(
      functions.map((fn) => [
        fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string,
        statSync(join(assembly.directory, fn.Metadata['aws:asset:path'], 'index.js')).size,
      ]),
    );
  }, budget('bundled'));

  it('bundles every handler apart, each under 300 KB, the authorizer under 150 KB', () => {
    expect(Object.keys(sizes).sort()).toEqual([
      'adapter-workflow',
      'admin',
      'audit',
      'authorizer',
      'budget-alerts',
      'chat-completions',
      'documents',
      'embeddings',
      'ingest-worker',
      'models',
      'offboarding',
      'placement',
      'retrieve',
      'sessions',
      'usage',
    ]);
    const overBudget = Object.entries(sizes).filter(([, size]) => size >= 300 * 1024);
    expect(overBudget).toEqual([]);
    expect(sizes.authorizer).toBeLessThan(150 * 1024);
  });

  it('bundles the packages only some requests load apart, beside the handlers that import them', () => {
    const lazy = Object.fromEntries(
      functions.map((fn) => {
        const dir = join(assembly.directory, fn.Metadata['aws:asset:path']);
        const code = readFileSync(join(dir, 'index.js'), 'utf8');
        const required = LAZY_MODULES.filter((module) => code.includes(`require("${module}")`));
        // each where the handler's require() finds it, and none it does not require
        expect(LAZY_MODULES.filter((module) => existsSync(join(dir, 'node_modules', `${module}.js`)))).toEqual(
          required,
        );
        return [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string, { dir, required }];
      }),
    );
    expect(lazy['chat-completions'].required).toEqual(['@cfworker/json-schema', 're2js']);
    expect(lazy.embeddings.required).toEqual(['gpt-tokenizer/encoding/cl100k_base']);
    const load = (name: string, module: string) => require(join(lazy[name].dir, 'node_modules', `${module}.js`));
    expect(load('chat-completions', 're2js').RE2JS.compile('a+b').matcher('xaab').find()).toBe(true);
    const { Validator } = load('chat-completions', '@cfworker/json-schema');
    expect(new Validator({ type: 'integer' }).validate(1.5).valid).toBe(false);
    expect(load('embeddings', 'gpt-tokenizer/encoding/cl100k_base').decode([15339, 1917])).toBe('hello world');
  });

  it('carries the large static settings (the catalog, tiers, PII policies) in every bundle, not the environment', () => {
    for (const fn of functions) {
      const code = readFileSync(join(assembly.directory, fn.Metadata['aws:asset:path'], 'index.js'), 'utf8');
      expect(code).toContain('amazon.nova-micro-v1:0');
      expect(fn.Properties.Environment.Variables.MODEL_CATALOG).toBeUndefined();
    }
  });

  it("gives zod's English messages in every bundle, which zod/mini leaves out (contract/zod.ts)", () => {
    for (const fn of functions) {
      const code = readFileSync(join(assembly.directory, fn.Metadata['aws:asset:path'], 'index.js'), 'utf8');
      expect(code).toContain('Too big: expected');
    }
  });

  it('loads at cold start only the AWS SDK clients its handler uses (each one the runtime loads takes milliseconds)', () => {
    const base = ['client-dynamodb', 'client-sts'];
    const model = [...base, 'client-bedrock-runtime'];
    const workflow = [...base, 'client-bedrock', 'client-s3vectors', 'client-sagemaker'];
    const expected: Record<string, string[]> = {
      'adapter-workflow': [...base, 'client-sagemaker'],
      admin: [...workflow, 'client-eventbridge', 'client-sfn'],
      audit: base,
      authorizer: base,
      'budget-alerts': [...base, 'client-eventbridge'],
      'chat-completions': [...model, 'client-s3vectors', 'client-sagemaker-runtime'],
      documents: [...model, 'client-s3', 'client-s3vectors', 'client-sqs'],
      embeddings: model,
      // Batches' lines run through the chat core (the GPU endpoint's adapters too), reading and writing the tenant's files.
      // ...and runs them as Bedrock batch inference jobs (Bedrock's control plane).
      'ingest-worker': [
        ...model,
        'client-bedrock',
        'client-s3',
        'client-s3vectors',
        'client-sagemaker-runtime',
        'client-sqs',
      ],
      models: base,
      // The tenant's files go with the rest of its data.
      offboarding: [...workflow, 'client-s3'],
      placement: [...workflow, 'client-s3'],
      retrieve: [...model, 'client-s3vectors'],
      sessions: base,
      usage: base,
    };
    const clients = Object.fromEntries(
      functions.map((fn) => {
        const code = readFileSync(join(assembly.directory, fn.Metadata['aws:asset:path'], 'index.js'), 'utf8');
        const required = new Set([...code.matchAll(/require\("@aws-sdk\/(client-[a-z0-9-]+)"\)/g)].map((m) => m[1]));
        return [fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME as string, [...required].sort()];
      }),
    );
    expect(clients).toEqual(Object.fromEntries(Object.entries(expected).map(([name, list]) => [name, list.sort()])));
  });

  it('leaves out of a bundle the adapters its handler does not use', () => {
    // the authorizer reads the registry: no OpenSearch signer, no Bedrock, no queue
    expect(sizes.authorizer).toBeLessThan(sizes['chat-completions'] - 30 * 1024);
  });
});
