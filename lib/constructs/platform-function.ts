import * as path from 'node:path';
import { Duration, Token } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type Function as LambdaFunction, Runtime, TenancyConfig, Tracing } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { BUNDLED_ENVIRONMENT_KEYS } from '../../contract/environment';
import { HANDLER_TIMEOUT_SECONDS } from '../../contract/lambda';
import type { FunctionName } from '../../contract/routes';

/**
 * The AWS SDK (and its @smithy parts) comes with the Lambda runtime: bundling it would make every
 * bundle 300 KB to 700 KB larger, and each cold start load it. The runtime's SDK v3 is kept
 * current by AWS; the tests run the version package-lock.json pins.
 */
export const BUNDLE_EXTERNALS = ['@aws-sdk/*', '@smithy/*'];
/** ES module builds first, so esbuild drops what a handler does not use (the SDK ships both). */
export const BUNDLE_MAIN_FIELDS = ['module', 'main'];
/**
 * Packages only some requests use, each loaded by a dynamic `import()` on first use: structured
 * outputs' JSON Schema validator and RE2 for their patterns, cl100k_base's vocabulary (a megabyte)
 * for token-id input. Bundled on their own into the asset's `node_modules`, where the handler's
 * `require` finds them, so a cold start neither reads nor parses them: only in the assets whose
 * handler imports them.
 */
export const LAZY_MODULES = ['@cfworker/json-schema', 're2js', 'gpt-tokenizer/encoding/cl100k_base'];

/** Every function's architecture, and its memory (and with it CPU) unless a construct sets its own. */
export const FUNCTION_ARCHITECTURE = Architecture.ARM_64;
export const DEFAULT_MEMORY_MB = 1024;
/** Every function is traced (X-Ray, active), like the API stage. */
export const FUNCTION_TRACING = Tracing.ACTIVE;

/** Longest a handler runs by default; API Gateway stops waiting at 29 s anyway. */
export const DEFAULT_HANDLER_TIMEOUT = Duration.seconds(HANDLER_TIMEOUT_SECONDS);

export interface PlatformFunctionProps {
  /** Handler file name under `lambdas/handlers/`, without `.ts`. */
  readonly handlerName: FunctionName;
  /** Environment the runtime composition root reads (see `lambdas/runtime.ts`). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Longest a single invocation may run.
   * @default DEFAULT_HANDLER_TIMEOUT (30 s)
   */
  readonly timeout?: Duration;
  /**
   * Memory (and with it CPU) of the function.
   * @default DEFAULT_MEMORY_MB (1024)
   */
  readonly memorySize?: number;
  /**
   * How long the function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Concurrency kept for this function alone, and its ceiling (a silo's sizing).
   * @default - the account's unreserved pool
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * An execution environment per tenant (Lambda tenant isolation): every invocation must name its
   * tenant (`X-Amz-Tenant-Id`), and no environment serves two tenants.
   * @default false
   */
  readonly tenantIsolation?: boolean;
}

/**
 * One handler as a Lambda function: bundled by the local esbuild (never Docker), arm64, current
 * Node.js runtime, its own log group and a role that may write only to that log group until a
 * construct grants it more.
 */
export class PlatformFunction extends Construct {
  /** The function itself, its log group (`logGroup`) included: the dashboard queries it. */
  public readonly function: LambdaFunction;

  constructor(scope: Construct, id: string, props: PlatformFunctionProps) {
    super(scope, id);
    const logGroup = new LogGroup(this, 'Logs', { retention: props.logRetention ?? RetentionDays.ONE_MONTH });
    const role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason: 'X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords accept only Resource *.',
          appliesTo: ['Resource::*'],
        },
      ],
      true,
    );
    this.function = new NodejsFunction(this, 'Function', {
      entry: path.join(__dirname, '..', '..', 'lambdas', 'handlers', `${props.handlerName}.ts`),
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: FUNCTION_ARCHITECTURE,
      memorySize: props.memorySize ?? DEFAULT_MEMORY_MB,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      tenancyConfig: props.tenantIsolation ? TenancyConfig.PER_TENANT : undefined,
      timeout: props.timeout ?? DEFAULT_HANDLER_TIMEOUT,
      role,
      logGroup,
      // Traced like the API stage, so one trace runs from the gateway through the handler to its calls.
      tracing: FUNCTION_TRACING,
      environment: {
        ...withoutKeys(props.environment, BUNDLED_ENVIRONMENT_KEYS),
        POWERTOOLS_SERVICE_NAME: props.handlerName,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        forceDockerBundling: false,
        externalModules: [...BUNDLE_EXTERNALS, ...LAZY_MODULES],
        // import() of a lazy module as require(), which finds `node_modules/<module>.js` (Node's import() takes no extension).
        esbuildArgs: { '--supported:dynamic-import': 'false' },
        minify: true,
        mainFields: BUNDLE_MAIN_FIELDS,
        sourceMap: true,
        target: 'node24',
        logLevel: LogLevel.ERROR,
        // The large settings fixed at synth travel in the bundle: Lambda's environment holds 4 KB.
        define: { BUNDLED_ENVIRONMENT: JSON.stringify(JSON.stringify(bundledVariables(props.environment))) },
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir, outputDir) => LAZY_MODULES.map((module) => lazyModuleCommand(module, outputDir)),
        },
      },
    });
  }
}

/**
 * Bundles `module` to `<outputDir>/node_modules/<module>.js` if the handler's bundle requires it (run
 * from the project's root). No source map: it is a package's code, and Node parses a module's map
 * as it loads it (`--enable-source-maps`).
 */
function lazyModuleCommand(module: string, outputDir: string): string {
  const build = [
    'node_modules/.bin/esbuild',
    module,
    '--bundle',
    '--minify',
    '--platform=node',
    '--target=node24',
    '--format=cjs',
    `--main-fields=${BUNDLE_MAIN_FIELDS.join(',')}`,
    '--log-level=error',
    `--outfile="${outputDir}/node_modules/${module}.js"`,
  ];
  return `if grep -qF 'require("${module}")' "${outputDir}/index.js"; then ${build.join(' ')}; fi`;
}

/** The variables that go into the bundle; they must be known at synth (no deploy-time tokens). */
function bundledVariables(environment: Readonly<Record<string, string>>): Record<string, string> {
  const bundled = Object.fromEntries(
    BUNDLED_ENVIRONMENT_KEYS.flatMap((key) => (environment[key] === undefined ? [] : [[key, environment[key]]])),
  );
  if (Token.isUnresolved(JSON.stringify(bundled))) throw new Error('bundled settings must be known at synth');
  return bundled;
}

function withoutKeys(environment: Readonly<Record<string, string>>, keys: readonly string[]): Record<string, string> {
  return Object.fromEntries(Object.entries(environment).filter(([key]) => !keys.includes(key)));
}
