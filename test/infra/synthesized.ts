import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { App, Aspects, CloudFormationValidatePlugin, type PolicyValidationPluginReport } from 'aws-cdk-lib';
import { Annotations, Template } from 'aws-cdk-lib/assertions';
import {
  CloudAssembly,
  type CloudFormationStackArtifact,
  type SynthesisMessage,
  UNKNOWN_ACCOUNT,
  UNKNOWN_REGION,
} from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { RootConstruct } from 'constructs';
import { platformConfig, siloTenants } from '../../lib/config';
import { addPlatformStacks } from '../../lib/platform-app';
import { PlatformStack } from '../../lib/platform-stack';
import { SiloTenantStack } from '../../lib/silo-tenant-stack';

/**
 * The stack configurations the infra suites assert on, each synthesized once (not once per suite, nor
 * once per `Template.fromStack` / `Annotations.fromStack`, which synthesize the whole app again) and kept
 * on disk for the next suite and the next run; see `synthesized`.
 *
 * Time budgets of the infra suites, in one place: a test body only reads templates, within jest.config.js's
 * `testTimeout`; synthesis runs in a suite's `beforeAll`, within `budget(...)` of the configurations it
 * loads: the sum of their `budgetMs`, each enough to synthesize it cold on a loaded two-core machine (or
 * to wait for another worker synthesizing it).
 */

/** `cdk synth -c ...` of the pool stack platform-stack.test.ts asserts on (a JWT issuer, production search). */
export const PLATFORM_CONTEXT: Readonly<Record<string, string>> = {
  jwtIssuer: 'https://issuer.example.com/tenants',
  jwtAudience: 'platform-client',
  searchSizing: 'production',
  logRetentionDays: '90',
};

/** `-c usageConsole=true` and the domain and certificate it needs (CloudFront's own domain takes TLS 1.0). */
export const CONSOLE_CONTEXT: Readonly<Record<string, string>> = {
  usageConsole: 'true',
  consoleDomain: 'ai.example.com',
  consoleCertificateArn: 'arn:aws:acm:us-east-1:111111111111:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789',
};

/** The silo tenants of silo-stack.test.ts's `silos` configuration. */
export const SILO_CONTEXT: Readonly<Record<string, string>> = {
  siloTenants: 'a-bank, b-health',
  'silo.b-health.searchSizing': 'production',
};

/** `cdk synth -c adapterInstanceType=ml.g5.12xlarge -c adapterComponents=standard:2,enterprise:2 ...` */
export const ADAPTER_CONTEXT: Readonly<Record<string, string>> = {
  adapterInstanceType: 'ml.g5.12xlarge',
  adapterComponents: 'standard:2,enterprise:2',
  adapterArtifactBuckets: 'tenant-adapters',
  adapterMaxInstances: '3',
};

/** The stack name `addPlatformStacks` gives the pool without `-c stackName=...`. */
export const POOL = 'MultiTenantAiPlatform';

interface Configuration {
  /** The app's context; functions are not bundled (`aws:cdk:bundling-stacks: []`), assets not staged, unless `bundling`. */
  readonly context?: Record<string, unknown>;
  readonly bundling?: boolean;
  /** Adds the stacks (and aspects) to the app. */
  readonly build: (app: App) => void;
  /** The synthesis, cold, on a loaded machine (a suite's first synthesis also loads aws-cdk-lib and cdk-nag). */
  readonly budgetMs: number;
}

const SYNTH_BUDGET_MS = 60_000;
/** The CloudFormation validation engine's start (it compiles its WebAssembly) and its pass over every configuration. */
export const CFN_VALIDATION_BUDGET_MS = 60_000;

/** The pool stack alone, its config from `context`, cdk-nag on when `nag`. */
function platformStack(stackName: string, context: Record<string, string>, nag: boolean): Configuration['build'] {
  return (app) => {
    new PlatformStack(app, stackName, { config: platformConfig((key) => context[key]) });
    if (nag) Aspects.of(app).add(new AwsSolutionsChecks());
  };
}

/** The app as bin/app.ts builds it from `context` (`cdk synth -c key=value ...`): the pool, a stack per silo tenant, cdk-nag on. */
function platformApp(context: Record<string, string>): Configuration {
  return { context, build: (app) => addPlatformStacks(app), budgetMs: SYNTH_BUDGET_MS };
}

const CONFIGURATIONS = {
  /** platform-stack.test.ts: the pool stack with PLATFORM_CONTEXT, cdk-nag on. */
  platform: { build: platformStack('Platform', PLATFORM_CONTEXT, true), budgetMs: SYNTH_BUDGET_MS },
  /** `-c legacySharedIndex=true`, while `reindex --all` empties the shared index of earlier versions. */
  legacySharedIndex: {
    build: platformStack('Upgrading', { legacySharedIndex: 'true' }, false),
    budgetMs: SYNTH_BUDGET_MS,
  },
  /** PLATFORM_CONTEXT with Lambda tenant isolation. */
  tenantIsolation: {
    build: platformStack('Isolated', { ...PLATFORM_CONTEXT, lambdaTenantIsolation: 'true' }, false),
    budgetMs: SYNTH_BUDGET_MS,
  },
  /** PLATFORM_CONTEXT with the usage console, cdk-nag on. */
  usageConsole: {
    build: platformStack('WithConsole', { ...PLATFORM_CONTEXT, ...CONSOLE_CONTEXT }, true),
    budgetMs: SYNTH_BUDGET_MS,
  },
  /** PLATFORM_CONTEXT with tenant inference profiles, cdk-nag on. */
  inferenceProfiles: {
    build: platformStack('Profiles', { ...PLATFORM_CONTEXT, tenantInferenceProfiles: 'true' }, true),
    budgetMs: SYNTH_BUDGET_MS,
  },
  /** silo-stack.test.ts: the pool stack `Platform` (default config) and a silo stack per SILO_CONTEXT tenant, cdk-nag on. */
  silos: {
    build: (app) => {
      const config = platformConfig();
      new PlatformStack(app, 'Platform', { config });
      for (const silo of siloTenants((key) => SILO_CONTEXT[key])) {
        new SiloTenantStack(app, `Platform-silo-${silo.tenantId}`, {
          config: { ...config, search: silo.search },
          tenantId: silo.tenantId,
        });
      }
      Aspects.of(app).add(new AwsSolutionsChecks());
    },
    budgetMs: SYNTH_BUDGET_MS,
  },
  /** Every option on, and a silo with a GPU endpoint of its own: the largest function environments. */
  largest: platformApp({
    adapterInstanceType: 'ml.g5.12xlarge',
    adapterComponents: 'standard:2,enterprise:2',
    adapterArtifactBuckets: 'tenant-adapters-one,tenant-adapters-two',
    siloTenants: 'a-very-long-enterprise-tenant-name',
    'silo.a-very-long-enterprise-tenant-name.adapterInstanceType': 'ml.g5.12xlarge',
    tenantInferenceProfiles: 'true',
    lambdaTenantIsolation: 'true',
    ...CONSOLE_CONTEXT,
    consoleDomain: 'ai-console.enterprise-tenant.example.com',
    'silo.a-very-long-enterprise-tenant-name.usageConsole': 'true',
    'silo.a-very-long-enterprise-tenant-name.consoleDomain':
      'ai-console.a-very-long-enterprise-tenant-name.example.com',
    'silo.a-very-long-enterprise-tenant-name.consoleCertificateArn':
      'arn:aws:acm:us-east-1:111111111111:certificate/9a1b2c3d-4e5f-6789-abcd-ef0123456789',
    // As long as a Cognito user pool's issuer URL; no test names an AWS host.
    jwtIssuer: 'https://identity.enterprise-tenant.example.com/realms/eu-central-1_AbCdEfGhIjKlMnOp',
    jwtAudience: 'a-client-id-of-twenty-six-chars',
    jwksUri:
      'https://identity.enterprise-tenant.example.com/realms/eu-central-1_AbCdEfGhIjKlMnOp/.well-known/jwks.json',
  }),
  /** A silo whose entry reserves concurrency. */
  siloConcurrency: platformApp({ siloTenants: 'c-bank', 'silo.c-bank.concurrency': '25' }),
  /** placement-pipeline.test.ts: `cdk synth -c siloTenants=a-bank -c searchSizing=production`, the silo in its own region. */
  placement: platformApp({ siloTenants: 'a-bank', searchSizing: 'production', 'silo.a-bank.region': 'eu-central-1' }),
  /** The decommission deploy of a silo. */
  decommissioned: platformApp({ siloTenants: 'a-bank', 'silo.a-bank.decommission': 'true' }),
  /** adapter-endpoint.test.ts: ADAPTER_CONTEXT. */
  adapters: platformApp(ADAPTER_CONTEXT),
  /** A pool with a one-GPU endpoint, two silos, one of them with a GPU endpoint of its own. */
  siloAdapters: platformApp({
    adapterInstanceType: 'ml.g5.2xlarge',
    siloTenants: 'a-bank,b-health',
    'silo.b-health.adapterInstanceType': 'ml.g5.12xlarge',
  }),
  /** `cdk synth` with no context. */
  defaults: platformApp({}),
  /** bundles.test.ts: the pool stack with its functions bundled, as `cdk synth` bundles them (once, here). */
  bundled: {
    bundling: true,
    context: { 'aws:cdk:enable-asset-metadata': true },
    build: (app) => {
      new PlatformStack(app, 'Bundled', {
        // With the adapter endpoint, so the adapter workflow's function is bundled too.
        config: platformConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge' })[key]),
        placementPipeline: { poolStackName: 'Bundled', deployContext: {} },
      });
    },
    // esbuild, fifteen times
    budgetMs: 240_000,
  },
} satisfies Record<string, Configuration>;

export type ConfigurationName = keyof typeof CONFIGURATIONS;
export const CONFIGURATION_NAMES = Object.keys(CONFIGURATIONS) as ConfigurationName[];

/** The time budget of a `beforeAll` that loads these configurations. */
export function budget(...names: ConfigurationName[]): number {
  return names.reduce((sum, name) => sum + CONFIGURATIONS[name].budgetMs, 0);
}

/** A synthesized configuration: its cloud assembly on disk, read as the assertions would read a live synth. */
export interface Synthesized {
  /** The cloud assembly's directory (bundled assets under `aws:asset:path`). */
  readonly directory: string;
  /** Its stacks' names, in the assembly's order. */
  readonly stackNames: string[];
  /** The stack artifact: its environment, template, messages. */
  stack(stackName: string): CloudFormationStackArtifact;
  /** `Template.fromStack`, without synthesizing again. */
  template(stackName: string): Template;
  /** `Annotations.fromStack`, without synthesizing again: the stack's messages (cdk-nag's findings among them). */
  annotations(stackName: string): Annotations;
  /** aws-cdk-lib's built-in CloudFormation validation of every template (off in each synthesis here, run once per configuration). */
  cfnValidation(): PolicyValidationPluginReport;
}

/**
 * The configuration, synthesized: by this worker if no one has yet, else read from disk (waiting while another
 * worker synthesizes it). Kept under the OS temp directory, keyed by every file a synthesis may read (the
 * repository's sources, as git would track them, the installed packages, CDK_ variables),
 * so a change anywhere synthesizes again and an unchanged tree reuses the last run's. (Edits inside
 * node_modules go unseen, only its lock file is: remove `$TMPDIR/infra-synth-*` to synthesize afresh.)
 */
export async function synthesized(name: ConfigurationName): Promise<Synthesized> {
  return (await synthesizedAll([name]))[0];
}

/**
 * Each configuration of `names`, synthesized: those done or free first, those another worker is synthesizing
 * last; `then` sees each as soon as it is.
 */
export async function synthesizedAll(
  names: ConfigurationName[],
  then: (configuration: Synthesized, name: ConfigurationName) => void = () => {},
): Promise<Synthesized[]> {
  const done = new Map<ConfigurationName, Synthesized>();
  for (;;) {
    let waiting = false;
    for (const name of names.filter((name) => !done.has(name))) {
      const found = synthesizedNow(name);
      if (found) {
        done.set(name, found);
        then(found, name);
      } else waiting = true;
    }
    if (!waiting) return names.map((name) => done.get(name) as Synthesized);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The configuration, read from disk, or synthesized unless another worker is synthesizing it. */
function synthesizedNow(name: ConfigurationName): Synthesized | undefined {
  const dir = join(cacheDir(), name);
  if (existsSync(dir)) return load(dir);
  const lock = `${dir}.lock`;
  if (!tryLock(lock, CONFIGURATIONS[name].budgetMs)) return undefined;
  try {
    if (!existsSync(dir)) synthesize(CONFIGURATIONS[name], dir);
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
  return load(dir);
}

const REPOSITORY = join(__dirname, '..', '..');
/**
 * What the placement pipeline's source asset leaves out (lib/constructs/placement-pipeline.ts), and what git
 * ignores besides: nothing a synthesis reads but that asset's hash, which no test reads; test-output/ is
 * written while these suites run (the browser suites' screenshots).
 */
const NOT_READ = new Set(['node_modules', 'cdk.out', '.local', '.git', 'coverage', 'test-output']);
const NOT_READ_ENDINGS = ['.log', '.tsbuildinfo'];
/** The environment a synthesis reads: addPlatformStacks' default account and region, the CLI's context. */
const READ_VARIABLES = ['CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION', 'CDK_CONTEXT_JSON'];
/** A cache this old, of another state of the tree, is no longer kept. */
const KEPT_MS = 15 * 60 * 1000;

let current: string | undefined;
function cacheDir(): string {
  if (current) return current;
  const hash = createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (NOT_READ.has(entry.name) || NOT_READ_ENDINGS.some((ending) => entry.name.endsWith(ending))) continue;
      const path = join(dir, entry.name);
      hash.update(`${relative(REPOSITORY, path)}\0`);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSymbolicLink()) hash.update(readlinkSync(path));
      else if (entry.isFile()) hash.update(readFileSync(path));
      hash.update('\0');
    }
  };
  walk(REPOSITORY);
  const installed = join(REPOSITORY, 'node_modules', '.package-lock.json');
  if (existsSync(installed)) hash.update(readFileSync(installed));
  hash.update(process.version);
  for (const variable of READ_VARIABLES) hash.update(`\0${variable}=${process.env[variable] ?? ''}`);
  const root = join(tmpdir(), `infra-synth-${createHash('sha256').update(REPOSITORY).digest('hex').slice(0, 12)}`);
  current = join(root, hash.digest('hex').slice(0, 20));
  if (!existsSync(current)) {
    mkdirSync(current, { recursive: true });
    for (const other of readdirSync(root)) {
      const path = join(root, other);
      if (path !== current && Date.now() - statSync(path).mtimeMs > KEPT_MS) {
        rmSync(path, { recursive: true, force: true });
      }
    }
  }
  return current;
}

/** Takes the lock (a directory naming its owner), or clears one whose owner is gone or long overdue. */
function tryLock(lock: string, budgetMs: number): boolean {
  try {
    mkdirSync(dirname(lock), { recursive: true });
    mkdirSync(lock);
    writeFileSync(join(lock, 'owner'), String(process.pid));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  try {
    const owner = Number(readFileSync(join(lock, 'owner'), 'utf8'));
    const overdue = Date.now() - statSync(lock).mtimeMs > 2 * budgetMs;
    if (overdue || (owner && !alive(owner))) rmSync(lock, { recursive: true, force: true });
  } catch {
    // just taken or released: look again
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function synthesize(configuration: Configuration, dir: string): void {
  const outdir = `${dir}.${process.pid}`;
  rmSync(outdir, { recursive: true, force: true });
  const app = new App({
    outdir,
    // Run once per configuration instead, by cfnValidation(): it would start its engine in every suite.
    builtinCloudFormationValidation: false,
    context: {
      // Unless bundled, no asset is staged (the repository as the pipeline's source, the console's CLI layer):
      // the same templates, without copying them into every assembly.
      ...(configuration.bundling ? {} : { 'aws:cdk:bundling-stacks': [], 'aws:cdk:disable-asset-staging': true }),
      ...configuration.context,
    },
  });
  try {
    configuration.build(app);
    app.synth();
  } catch (error) {
    rmSync(outdir, { recursive: true, force: true });
    throw error;
  }
  try {
    renameSync(outdir, dir);
  } catch (error) {
    // Synthesized meanwhile by a worker that took over the lock: the same assembly
    rmSync(outdir, { recursive: true, force: true });
    if (!existsSync(dir)) throw error;
  }
}

const loaded = new Map<string, Synthesized>();
let validator: CloudFormationValidatePlugin | undefined;

function load(directory: string): Synthesized {
  const found = loaded.get(directory);
  if (found) return found;
  const assembly = new CloudAssembly(directory);
  const templates = new Map<string, Template>();
  const synthesized: Synthesized = {
    directory,
    stackNames: assembly.stacks.map((stack) => stack.stackName),
    stack: (stackName) => assembly.getStackByName(stackName),
    template: (stackName) => {
      const template = templates.get(stackName) ?? Template.fromJSON(assembly.getStackByName(stackName).template);
      templates.set(stackName, template);
      return template;
    },
    annotations: (stackName) =>
      // What Annotations.fromStack constructs from the stack artifact of a fresh synth.
      new (Annotations as unknown as new (messages: SynthesisMessage[]) => Annotations)(
        assembly.getStackByName(stackName).messages,
      ),
    cfnValidation: () => {
      const file = join(directory, 'cfn-validation.json');
      if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
      // As the built-in validation passes the app's stacks to the plugin (core/lib/private/synthesis-validation).
      const stackTemplates = assembly.stacks.map((stack) => ({
        stackConstructPath: stack.hierarchicalId,
        templatePath: stack.templateFullPath,
        accountId: stack.environment.account === UNKNOWN_ACCOUNT ? undefined : stack.environment.account,
        region: stack.environment.region === UNKNOWN_REGION ? undefined : stack.environment.region,
      }));
      validator ??= new CloudFormationValidatePlugin();
      // The plugin reads the templates alone, not the construct tree.
      const report = validator.validate({
        templatePaths: stackTemplates.map((stack) => stack.templatePath),
        stackTemplates,
        appConstruct: new RootConstruct('validated'),
      });
      writeFileSync(`${file}.${process.pid}`, JSON.stringify(report));
      renameSync(`${file}.${process.pid}`, file);
      return report;
    },
  };
  loaded.set(directory, synthesized);
  return synthesized;
}
