import { CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  AwsIntegration,
  type IAuthorizer,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseTransferMode,
  ResponseType,
  RestApi,
} from 'aws-cdk-lib/aws-apigateway';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { CfnWebACLAssociation } from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { errorBody } from '../../contract/errors';
import { BINARY_MEDIA_TYPES } from '../../contract/files';
import { ITEM_ACCESS_ACTIONS } from '../../contract/iam';
import { STREAMING_HANDLER_TIMEOUT_SECONDS } from '../../contract/lambda';
import {
  AUTHORIZER_DENY_REASON,
  GATEWAY_RESPONSES,
  type GatewayResponseType,
  type HandlerName,
  MODEL_CALLING_HANDLERS,
  ROUTES,
  type Route,
} from '../../contract/routes';
import type { IngestPipeline } from './ingest-pipeline';
import type { ModelGateway } from './model-gateway';
import { PlatformFunction } from './platform-function';
import type { TenantAccessRole } from './tenant-access-role';

/** API Gateway's service principal: the one route functions let invoke them. */
export const API_GATEWAY_PRINCIPAL = 'apigateway.amazonaws.com';

export interface TenantApiProps {
  /** The tenant authorizer every tenant route uses... */
  readonly authorizer: IAuthorizer;
  /** ...but Anthropic's, which take `x-api-key` too. */
  readonly anthropicAuthorizer: IAuthorizer;
  /** Tenants and API keys: read and written with the function's own role (admin only). */
  readonly tenantTable: ITable;
  /** The usage ledger: the admin function may Scan it for the all-tenant report; nobody else reaches it directly. */
  readonly ledgerTable: ITable;
  /** Handlers reach the ledger and audit tables only through sessions of this role. */
  readonly tenantAccess: TenantAccessRole;
  readonly models: ModelGateway;
  /** Where the documents handler sends large documents. */
  readonly ingest: IngestPipeline;
  /** Environment of the runtime composition root, given to every handler. */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The routes to serve.
   * @default ROUTES - the platform's route table
   */
  readonly routes?: readonly Route[];
  /**
   * Stage name; the OpenAI base URL is `<stage URL>/v1`.
   * @default 'prod'
   */
  readonly stageName?: string;
  /**
   * ARN of a regional WAFv2 web ACL to associate with the stage.
   * @default - no web ACL
   */
  readonly webAclArn?: string;
  /**
   * How long the functions' log groups keep their logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Concurrency reserved for each tenant-route function (a silo's sizing from config).
   * @default - the account's unreserved pool
   */
  readonly reservedConcurrency?: number;
  /**
   * Lambda tenant isolation for the model-calling functions: API Gateway invokes them with the
   * authorizer's tenant id as `X-Amz-Tenant-Id`.
   * @default false
   */
  readonly tenantIsolation?: boolean;
}

/**
 * The public REST API: one Lambda per handler, tenant routes behind the tenant authorizer, admin
 * routes behind IAM, access logs carrying the tenant id, errors from API Gateway itself in the
 * platform's error shape.
 */
export class TenantApi extends Construct {
  public readonly api: RestApi;
  public readonly handlers: Readonly<Record<HandlerName, LambdaFunction>>;
  public readonly stageName: string;

  constructor(scope: Construct, id: string, props: TenantApiProps) {
    super(scope, id);
    const routes = props.routes ?? ROUTES;
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_YEAR });
    this.stageName = props.stageName ?? 'prod';
    this.api = new RestApi(this, 'Api', {
      description: 'Multi-tenant AI platform: OpenAI-compatible tenant API and admin API',
      cloudWatchRole: true,
      // A file upload's form reaches its function as bytes (base64), not as text.
      binaryMediaTypes: [...BINARY_MEDIA_TYPES],
      deployOptions: {
        stageName: this.stageName,
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            time: AccessLogField.contextRequestTime(),
            method: AccessLogField.contextHttpMethod(),
            resource: AccessLogField.contextResourcePath(),
            status: AccessLogField.contextStatus(),
            latencyMs: AccessLogField.contextResponseLatency(),
            tenantId: AccessLogField.contextAuthorizer('tenantId'),
            principalId: AccessLogField.contextAuthorizerPrincipalId(),
            errorType: AccessLogField.contextErrorResponseType(),
            sourceIp: AccessLogField.contextIdentitySourceIp(),
          }),
        ),
        // ERROR only, and never data traces: request bodies hold tenants' prompts.
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        tracingEnabled: true,
      },
    });
    for (const [type, response] of Object.entries(GATEWAY_RESPONSES)) {
      this.api.addGatewayResponse(type, {
        type: ResponseType.of(type as GatewayResponseType),
        statusCode: String(response.status),
        templates: {
          'application/json': JSON.stringify(
            errorBody(
              response.code,
              // A Deny of the tenant authorizer says why; IAM's (admin routes) adds nothing.
              type === 'ACCESS_DENIED'
                ? `${response.message}$context.authorizer.${AUTHORIZER_DENY_REASON}`
                : response.message,
              '$context.requestId',
            ),
          ),
        },
      });
    }
    const functions = {} as Record<HandlerName, LambdaFunction>;
    // Tenant data (ledger, audit) only through tenant-scoped sessions; nothing else beyond these.
    const modelsAndTenantData = (fn: IFunction) => {
      props.tenantAccess.grantAssume(fn);
      props.models.grantInvoke(fn);
    };
    const grants: Record<HandlerName, (fn: IFunction) => void> = {
      'chat-completions': (fn) => {
        modelsAndTenantData(fn);
        // Routes may fall back to a chat model's cross-region profile.
        props.models.grantCrossRegionInvoke(fn);
      },
      embeddings: modelsAndTenantData,
      documents: (fn) => {
        modelsAndTenantData(fn);
        props.ingest.grantEnqueue(fn);
      },
      retrieve: modelsAndTenantData,
      usage: (fn) => props.tenantAccess.grantAssume(fn),
      models: (fn) => props.tenantAccess.grantAssume(fn),
      audit: (fn) => props.tenantAccess.grantAssume(fn),
      sessions: (fn) => props.tenantAccess.grantAssume(fn),
      admin: (fn) => {
        props.tenantAccess.grantAssume(fn);
        props.tenantTable.grant(fn, ...ITEM_ACCESS_ACTIONS);
        // The all-tenant views: the tenant list, the usage report.
        props.tenantTable.grant(fn, 'dynamodb:Scan');
        props.ledgerTable.grant(fn, 'dynamodb:Scan');
      },
    };
    const isolated = (handler: HandlerName) =>
      props.tenantIsolation === true && MODEL_CALLING_HANDLERS.includes(handler);
    for (const route of routes) {
      if (!functions[route.handler]) {
        functions[route.handler] = new PlatformFunction(this, pascalCase(route.handler), {
          handlerName: route.handler,
          environment: props.environment,
          logRetention: props.logRetention,
          reservedConcurrentExecutions: route.auth === 'tenant' ? props.reservedConcurrency : undefined,
          tenantIsolation: isolated(route.handler),
          ...(route.streaming && { timeout: Duration.seconds(STREAMING_HANDLER_TIMEOUT_SECONDS) }),
        }).function;
        grants[route.handler](functions[route.handler]);
        // One permission a function, for this API's stage, instead of one a method: a stack's resources
        // do not grow with its routes. The stage alone: no console test invocation, which bypasses the authorizer.
        functions[route.handler].addPermission('ApiInvoke', {
          principal: new ServicePrincipal(API_GATEWAY_PRINCIPAL),
          sourceArn: this.api.arnForExecuteApi('*', '/*', this.stageName),
        });
      }
      this.api.root.resourceForPath(route.path).addMethod(
        route.method,
        // Lambda proxy, as LambdaIntegration builds it, without its permission a method (the function's own, above).
        new AwsIntegration({
          proxy: true,
          service: 'lambda',
          path: `${route.streaming ? '2021-11-15' : '2015-03-31'}/functions/${functions[route.handler].functionArn}/${route.streaming ? 'response-streaming-invocations' : 'invocations'}`,
          options: {
            // The tenant the authorizer established, never one the client names.
            ...(isolated(route.handler) && {
              requestParameters: { 'integration.request.header.X-Amz-Tenant-Id': 'context.authorizer.tenantId' },
            }),
            // Streamed: `response-streaming-invocations`, the answer passed on as the function writes it.
            ...(route.streaming && {
              responseTransferMode: ResponseTransferMode.STREAM,
              timeout: Duration.seconds(STREAMING_HANDLER_TIMEOUT_SECONDS),
            }),
          },
        }),
        // A missing Authorization header is the authorizer's 401 (its identity source); bodies are
        // validated by the handlers' schemas, so their errors keep the platform's shape.
        route.auth === 'tenant'
          ? {
              authorizer: route.dialect === 'anthropic' ? props.anthropicAuthorizer : props.authorizer,
              authorizationType: AuthorizationType.CUSTOM,
            }
          : { authorizationType: AuthorizationType.IAM },
      );
    }
    this.handlers = functions;

    if (props.webAclArn) {
      new CfnWebACLAssociation(this, 'WebAcl', {
        resourceArn: this.api.deploymentStage.stageArn,
        webAclArn: props.webAclArn,
      });
    }
    new CfnOutput(this, 'OpenAiBaseUrl', {
      value: `${this.api.url}v1`,
      description: 'baseURL for OpenAI SDKs (with a tenant API key or JWT as apiKey)',
    });
  }

  /**
   * The stage's base URL (no trailing slash), built from the API's id and stage name: it names the
   * API alone, not its deployment (which depends on every function), so what a function depends on
   * (a build project a workflow it starts runs) may hold it without a cycle.
   */
  baseUrl(): string {
    const stack = Stack.of(this);
    return `https://${this.api.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}/${this.stageName}`;
  }
}

function pascalCase(name: string): string {
  return name.replace(/(^|-)(\w)/g, (_, __, letter: string) => letter.toUpperCase());
}
