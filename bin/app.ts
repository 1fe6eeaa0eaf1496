import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { platformConfig } from '../lib/config';
import { PlatformStack } from '../lib/platform-stack';

const app = new App();
const context = (key: string) => app.node.tryGetContext(key);
const account = context('account') ?? process.env.CDK_DEFAULT_ACCOUNT;
const region = context('region') ?? process.env.CDK_DEFAULT_REGION;

new PlatformStack(app, context('stackName') ?? 'MultiTenantAiPlatform', {
  env: account && region ? { account, region } : undefined,
  config: platformConfig(context),
  webAclArn: context('webAclArn'),
});
Aspects.of(app).add(new AwsSolutionsChecks());
