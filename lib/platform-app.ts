import { type App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { platformConfig, siloRegionSchema, siloTenants } from './config';
import { PlatformStack } from './platform-stack';
import { SiloTenantStack } from './silo-tenant-stack';

/** Context a silo takes from its own `silo.<tenantId>.` keys, not the pool's. */
const SILO_OWN_CONTEXT = /^(adapter|usageConsole$|console)/;

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
  const pool = new PlatformStack(app, stackName, {
    env,
    config,
    webAclArn: context('webAclArn'),
    placementPipeline: { poolStackName: stackName, deployContext: platformContext(app), siloRegions: siloRegions(app) },
  });
  const silos = siloTenants(context).map(
    (silo) =>
      new SiloTenantStack(app, `${stackName}-silo-${silo.tenantId}`, {
        // Data residency: a silo may live in a region of its own.
        env: account && (silo.region ?? region) ? { account, region: silo.region ?? region } : undefined,
        // A silo's GPU endpoint and console (on a domain of its own) are its own choice
        // (`silo.<id>.adapterInstanceType`, `silo.<id>.usageConsole`...), never the pool's by default.
        config: {
          ...platformConfig((key) =>
            SILO_OWN_CONTEXT.test(key) ? context(`silo.${silo.tenantId}.${key}`) : context(key),
          ),
          search: silo.search,
        },
        tenantId: silo.tenantId,
        webAclArn: context('webAclArn'),
        decommission: silo.decommission,
        concurrency: silo.concurrency,
      }),
  );
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { pool, silos };
}

/**
 * The platform's own context values (sizes, regions, identity provider), for the pipeline's silo
 * deploys: not CDK feature flags (`@aws-cdk/...:`, `aws:cdk:...`), which the source's cdk.json
 * holds, nor the silo list, which the pipeline sets per deploy.
 */
function platformContext(app: App): Record<string, string> {
  return Object.fromEntries(
    Object.entries(app.node.getAllContext()).filter(
      (entry): entry is [string, string] =>
        typeof entry[1] === 'string' && !entry[0].includes(':') && entry[0] !== 'siloTenants',
    ),
  );
}

/** The regions silos are placed in (`silo.<tenantId>.region`), so the pipeline may deploy there. */
function siloRegions(app: App): string[] {
  return Object.entries(app.node.getAllContext())
    .filter(([key]) => /^silo\.[^.]+\.region$/.test(key))
    .map(([, value]) => siloRegionSchema.parse(value));
}
