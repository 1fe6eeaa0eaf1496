import { type App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { platformConfig, siloTenants } from './config';
import { PlatformStack } from './platform-stack';
import { SiloTenantStack } from './silo-tenant-stack';

/**
 * The platform's stacks in `app`, from its context: the pool stack, and one silo stack per tenant
 * of `siloTenants` named `<stackName>-silo-<tenantId>`; cdk-nag checks every one.
 */
export function addPlatformStacks(app: App): { pool: PlatformStack; silos: SiloTenantStack[] } {
  const context = (key: string) => app.node.tryGetContext(key);
  const account = context('account') ?? process.env.CDK_DEFAULT_ACCOUNT;
  const region = context('region') ?? process.env.CDK_DEFAULT_REGION;
  const env = account && region ? { account, region } : undefined;
  const stackName = context('stackName') ?? 'MultiTenantAiPlatform';
  const config = platformConfig(context);
  const pool = new PlatformStack(app, stackName, { env, config, webAclArn: context('webAclArn') });
  const silos = siloTenants(context).map(
    (silo) =>
      new SiloTenantStack(app, `${stackName}-silo-${silo.tenantId}`, {
        // Data residency: a silo may live in a region of its own.
        env: account && (silo.region ?? region) ? { account, region: silo.region ?? region } : undefined,
        config: { ...config, search: silo.search },
        tenantId: silo.tenantId,
        webAclArn: context('webAclArn'),
      }),
  );
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { pool, silos };
}
