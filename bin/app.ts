import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { platformConfig, siloTenants } from '../lib/config';
import { PlatformStack } from '../lib/platform-stack';
import { SiloTenantStack } from '../lib/silo-tenant-stack';

const app = new App();
const context = (key: string) => app.node.tryGetContext(key);
const account = context('account') ?? process.env.CDK_DEFAULT_ACCOUNT;
const region = context('region') ?? process.env.CDK_DEFAULT_REGION;
const env = account && region ? { account, region } : undefined;
const stackName = context('stackName') ?? 'MultiTenantAiPlatform';
const config = platformConfig(context);

new PlatformStack(app, stackName, { env, config, webAclArn: context('webAclArn') });
for (const silo of siloTenants(context)) {
  new SiloTenantStack(app, `${stackName}-silo-${silo.tenantId}`, {
    env,
    config: { ...config, search: silo.search },
    tenantId: silo.tenantId,
    webAclArn: context('webAclArn'),
  });
}
Aspects.of(app).add(new AwsSolutionsChecks());
