import { Duration } from 'aws-cdk-lib';
import { type CfnAuthorizer, type IAuthorizer, IdentitySource, RequestAuthorizer } from 'aws-cdk-lib/aws-apigateway';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PlatformFunction } from './platform-function';

export interface TenantAuthorizerProps {
  /** Where tenants and API key hashes live; the authorizer only reads it. */
  readonly tenantTable: ITable;
  /** Environment of the runtime composition root (table names, JWT issuer...). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How long API Gateway caches a decision per `Authorization` header: the longest a revoked key
   * or a suspended tenant may still get through.
   * @default Duration.minutes(1)
   */
  readonly resultsCacheTtl?: Duration;
  /**
   * How long the function's log group keeps its logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
}

/** The Lambda REQUEST authorizer that turns a JWT or tenant API key into a tenant context. */
export class TenantAuthorizer extends Construct {
  public readonly authorizer: IAuthorizer;
  /**
   * The same function for Anthropic's routes, whose clients send `x-api-key` or a Bearer token:
   * API Gateway requires every identity source of a cached authorizer, so this one has none and
   * is not cached (one authorizer call per request on those routes).
   */
  public readonly anthropicAuthorizer: IAuthorizer;
  public readonly function: IFunction;

  constructor(scope: Construct, id: string, props: TenantAuthorizerProps) {
    super(scope, id);
    this.function = new PlatformFunction(this, 'Handler', {
      handlerName: 'authorizer',
      environment: props.environment,
      logRetention: props.logRetention,
      timeout: Duration.seconds(10),
    }).function;
    props.tenantTable.grant(this.function, 'dynamodb:GetItem');
    this.authorizer = new RequestAuthorizer(this, 'Authorizer', {
      handler: this.function,
      identitySources: [IdentitySource.header('Authorization')],
      resultsCacheTtl: props.resultsCacheTtl ?? Duration.minutes(1),
    });
    const anthropic = new RequestAuthorizer(this, 'AnthropicAuthorizer', {
      handler: this.function,
      identitySources: [],
      resultsCacheTtl: Duration.seconds(0),
    });
    // No identity source at all (CDK writes an empty one, which API Gateway need not accept).
    (anthropic.node.defaultChild as CfnAuthorizer).addPropertyDeletionOverride('IdentitySource');
    this.anthropicAuthorizer = anthropic;
  }
}
