import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { bedrockModels, type ModelCatalog } from '../../contract/catalog';
import { TENANT_COST_TAG } from '../../contract/tenancy';

export interface ModelGatewayProps {
  /** Public model names and the Bedrock models that serve them. */
  readonly catalog: ModelCatalog;
  /**
   * Tenants call the models through inference profiles of their own (tagged with their id).
   * @default false
   */
  readonly tenantInferenceProfiles?: boolean;
}

/** The shared base models: who may invoke which Bedrock model, and nothing else. */
export class ModelGateway extends Construct {
  public readonly catalog: ModelCatalog;
  private readonly tenantInferenceProfiles: boolean;

  constructor(scope: Construct, id: string, props: ModelGatewayProps) {
    super(scope, id);
    if (Object.keys(props.catalog).length === 0) throw new Error('model catalog must name at least one model');
    this.catalog = props.catalog;
    this.tenantInferenceProfiles = props.tenantInferenceProfiles ?? false;
  }

  /**
   * `bedrock:InvokeModel` (what `Converse` needs) on exactly the catalog's foundation models, and,
   * with tenant inference profiles, on the application profiles that carry a tenant's tag.
   */
  grantInvoke(grantee: IGrantable): Grant {
    const grant = Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:InvokeModel'],
      resourceArns: this.foundationModelArns(),
    });
    if (this.tenantInferenceProfiles) {
      Grant.addToPrincipal({
        grantee,
        actions: ['bedrock:InvokeModel'],
        resourceArns: [this.applicationProfileArns()],
        conditions: { StringLike: { [`aws:ResourceTag/${TENANT_COST_TAG}`]: '?*' } },
      });
      this.suppressProfileWildcard(grantee);
    }
    return grant;
  }

  /**
   * Making tenants' profiles (onboarding), copied from the catalog's models; listing (to find the
   * one a retried onboarding made) takes `*`.
   */
  grantCreateProfiles(grantee: IGrantable): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:CreateInferenceProfile', 'bedrock:TagResource'],
      resourceArns: [this.applicationProfileArns(), ...this.foundationModelArns()],
    });
    Grant.addToPrincipal({ grantee, actions: ['bedrock:ListInferenceProfiles'], resourceArns: ['*'] });
    this.suppressProfileWildcard(grantee, true);
  }

  /** Removing tenants' profiles (offboarding): only profiles that carry a tenant's tag. */
  grantDeleteProfiles(grantee: IGrantable): void {
    Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:DeleteInferenceProfile'],
      resourceArns: [this.applicationProfileArns()],
      conditions: { StringLike: { [`aws:ResourceTag/${TENANT_COST_TAG}`]: '?*' } },
    });
    this.suppressProfileWildcard(grantee);
  }

  private foundationModelArns(): string[] {
    const stack = Stack.of(this);
    const bedrockModelIds = bedrockModels(this.catalog).map((model) => model.bedrockModelId);
    return [...new Set(bedrockModelIds)].map((modelId) =>
      stack.formatArn({
        service: 'bedrock',
        account: '',
        resource: 'foundation-model',
        resourceName: modelId,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    );
  }

  /** Every application inference profile of this account and region: their ids are Bedrock's. */
  private applicationProfileArns(): string {
    return Stack.of(this).formatArn({
      service: 'bedrock',
      resource: 'application-inference-profile',
      resourceName: '*',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  private suppressProfileWildcard(grantee: IGrantable, listing = false): void {
    const role = grantee.grantPrincipal;
    if (!(role instanceof Construct)) return;
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'Application inference profile ids are chosen by Bedrock when a tenant is onboarded: the resource is every profile of the account and region, narrowed by the tenant tag it must carry. ListInferenceProfiles takes only Resource *.',
          appliesTo: [
            'Resource::arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:application-inference-profile/*',
            ...(listing ? ['Resource::*'] : []),
          ],
        },
      ],
      true,
    );
  }
}
