import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { bedrockModels, type ModelCatalog } from '../../contract/catalog';
import { TENANT_SESSION_TAG } from '../../contract/iam';
import { CROSS_REGION_GEOS } from '../../contract/routing';
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
const INVOKE_ACTIONS = ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'];

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
   * `bedrock:InvokeModel` and `bedrock:InvokeModelWithResponseStream` (what `Converse` and
   * `ConverseStream` need) on exactly the catalog's foundation models. Tenants' own inference
   * profiles are not among them: their calls are signed with the tenant's session (`grantTenantProfiles`).
   */
  grantInvoke(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({ grantee, actions: INVOKE_ACTIONS, resourceArns: this.foundationModelArns() });
  }

  /**
   * The same through each geography's system-defined cross-region profile of each catalog chat
   * model, which routes may name as targets (`nova-lite@us`): such a profile runs its model in any
   * region of its geography, so the model is granted in every region, but only as what one of
   * those profiles runs (Bedrock's cross-region inference asks for both).
   */
  grantCrossRegionInvoke(grantee: IGrantable): Grant {
    const chatModelIds = this.bedrockModelIds('chat');
    const profileArns = this.crossRegionProfileArns(chatModelIds);
    const profiles = Grant.addToPrincipal({ grantee, actions: INVOKE_ACTIONS, resourceArns: profileArns });
    const destinations = Grant.addToPrincipal({
      grantee,
      actions: INVOKE_ACTIONS,
      resourceArns: this.foundationModelArns(chatModelIds, '*'),
      conditions: { ArnLike: { 'bedrock:InferenceProfileArn': profileArns } },
    });
    const role = grantee.grantPrincipal;
    if (role instanceof Construct) {
      NagSuppressions.addResourceSuppressions(
        role,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "A cross-region profile runs its model in whichever region of its geography has capacity: the catalog's chat models in every region, only as what this region's system profiles of them run (bedrock:InferenceProfileArn).",
            appliesTo: chatModelIds.map(
              (modelId) => `Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/${modelId}`,
            ),
          },
        ],
        true,
      );
    }
    return profiles.combine(destinations);
  }

  /**
   * The tenant sessions' calls through their tenant's own inference profiles: a profile whose
   * `tenantId` tag is the session's, and the catalog's models only through such a profile.
   */
  grantTenantProfiles(tenantSessions: IGrantable): Grant {
    if (!this.tenantInferenceProfiles) return Grant.drop(tenantSessions, 'no tenant inference profiles');
    const profiles = Grant.addToPrincipal({
      grantee: tenantSessions,
      actions: INVOKE_ACTIONS,
      resourceArns: [this.applicationProfileArns()],
      conditions: {
        StringEquals: { [`aws:ResourceTag/${TENANT_COST_TAG}`]: `\${aws:PrincipalTag/${TENANT_SESSION_TAG}}` },
      },
    });
    const models = Grant.addToPrincipal({
      grantee: tenantSessions,
      actions: INVOKE_ACTIONS,
      resourceArns: this.foundationModelArns(),
      // Only as the model a profile runs: a tenant session calls no shared model by itself.
      conditions: { ArnLike: { 'bedrock:InferenceProfileArn': this.applicationProfileArns() } },
    });
    this.suppressProfileWildcard(tenantSessions);
    return profiles.combine(models);
  }

  /**
   * Making tenants' profiles (onboarding), copied from the catalog's models; listing (to find the
   * one a retried onboarding made) takes `*`.
   */
  grantCreateProfiles(grantee: IGrantable): Grant {
    const create = Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:CreateInferenceProfile', 'bedrock:TagResource'],
      resourceArns: [this.applicationProfileArns(), ...this.foundationModelArns()],
    });
    const list = Grant.addToPrincipal({ grantee, actions: ['bedrock:ListInferenceProfiles'], resourceArns: ['*'] });
    this.suppressProfileWildcard(grantee, true);
    return create.combine(list);
  }

  /** Removing tenants' profiles (offboarding): only profiles that carry a tenant's tag. */
  grantDeleteProfiles(grantee: IGrantable): Grant {
    const grant = Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:DeleteInferenceProfile'],
      resourceArns: [this.applicationProfileArns()],
      conditions: { StringLike: { [`aws:ResourceTag/${TENANT_COST_TAG}`]: '?*' } },
    });
    this.suppressProfileWildcard(grantee);
    return grant;
  }

  /** Foundation models (the catalog's Bedrock models unless given), in this stack's region or in `region` (`*`: any). */
  /** The catalog's Bedrock models with batch prices: those batches run as Bedrock batch inference jobs of. */
  batchModelArns(): string[] {
    const ids = bedrockModels(this.catalog).flatMap((model) =>
      'batchInputUsdPerMillionTokens' in model && model.batchInputUsdPerMillionTokens !== undefined
        ? [model.bedrockModelId]
        : [],
    );
    return this.foundationModelArns(ids);
  }

  private foundationModelArns(modelIds = this.bedrockModelIds(), region?: string): string[] {
    const stack = Stack.of(this);
    return modelIds.map((modelId) =>
      stack.formatArn({
        service: 'bedrock',
        region,
        account: '',
        resource: 'foundation-model',
        resourceName: modelId,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    );
  }

  /** Each geography's system-defined cross-region profile of each model (`us.amazon.nova-lite-v1:0`), in this region. */
  private crossRegionProfileArns(modelIds: readonly string[]): string[] {
    const stack = Stack.of(this);
    return CROSS_REGION_GEOS.flatMap((geo) =>
      modelIds.map((modelId) =>
        stack.formatArn({
          service: 'bedrock',
          resource: 'inference-profile',
          resourceName: `${geo}.${modelId}`,
          arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
        }),
      ),
    );
  }

  /** The catalog's Bedrock model ids, of one kind if given. */
  private bedrockModelIds(kind?: 'chat' | 'embedding'): string[] {
    const models = bedrockModels(this.catalog).filter((model) => kind === undefined || model.kind === kind);
    return [...new Set(models.map((model) => model.bedrockModelId))];
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
