import middy from '@middy/core';
import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import {
  AUTHORIZER_DENY_REASON,
  AUTHORIZER_FORWARD_TO,
  credentialOf,
  TENANT_ROUTE_PREFIX,
} from '../../contract/routes';
import { authorize } from '../core/authorize';
import { PlatformError } from '../core/errors';
import { toAuthorizerContext } from '../core/tenant';
import { lambdaHandler, type PlatformDeps, registry } from '../runtime';
import { tokens } from '../runtime-jwt';
import { lambdaFunction } from './lambda';

/**
 * The cached policy is reused for every route of the stage, so it covers all tenant routes
 * (`.../<stage>/*\/v1/*`), never just the method that happened to be called first.
 */
export function tenantRoutesArn(methodArn: string): string {
  const [apiArn, stage] = methodArn.split('/');
  return `${apiArn}/${stage}/*${TENANT_ROUTE_PREFIX}*`;
}

/** The ports this handler uses: its Lambda bundle holds their adapters and no others. */
export type AuthorizerDeps = Pick<PlatformDeps, 'registry' | 'tokens'> & { readonly siloTenantId?: string };

/** REQUEST authorizer: the only place a credential becomes a tenant. */
export function create(deps: AuthorizerDeps) {
  return lambdaFunction(
    middy<APIGatewayRequestAuthorizerEvent, APIGatewayAuthorizerResult>().handler(async (event) => {
      const header = credentialOf(event.headers ?? {});
      let decision: Awaited<ReturnType<typeof authorize>>;
      try {
        decision = await authorize(deps, header);
      } catch (error) {
        // API Gateway answers 401 (its UNAUTHORIZED gateway response) only for this exact message.
        if (error instanceof PlatformError && error.code === 'unauthenticated') throw new Error('Unauthorized');
        throw error;
      }
      const statement = {
        Action: 'execute-api:Invoke',
        Effect: decision.effect === 'Deny' ? ('Deny' as const) : ('Allow' as const),
        Resource: tenantRoutesArn(event.methodArn),
      };
      const policyDocument = { Version: '2012-10-17', Statement: [statement] };
      switch (decision.effect) {
        case 'Allow':
          return {
            principalId: decision.context.principal.id,
            policyDocument,
            context: toAuthorizerContext(decision.context),
          };
        case 'Forward':
          return {
            principalId: decision.principalId,
            policyDocument,
            context: { tenantId: decision.tenantId, [AUTHORIZER_FORWARD_TO]: decision.to },
          };
        case 'Deny':
          return {
            principalId: decision.principalId,
            policyDocument,
            context: { [AUTHORIZER_DENY_REASON]: `: ${decision.reason}` },
          };
      }
    }),
  );
}

export const handler = lambdaHandler((wiring) =>
  create({ registry: registry(wiring), tokens: tokens(wiring), siloTenantId: wiring.settings.siloTenantId }),
);
