import { Stack } from 'aws-cdk-lib';
import { CfnGuardrail, CfnGuardrailVersion } from 'aws-cdk-lib/aws-bedrock';
import { Grant, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { GuardrailRef } from '../../contract/environment';
import type { GuardrailPolicy } from '../../contract/safety';
import type { Tier } from '../../contract/tenancy';

export interface TierGuardrailsProps {
  /** Each tier's policy (`lib/config.ts`). */
  readonly policies: Readonly<Record<Tier, GuardrailPolicy>>;
}

/**
 * A Bedrock guardrail per tier and a published version of each: the version the functions name in
 * `Converse` and `ApplyGuardrail`, so a policy change takes effect by a deploy, never by an edit
 * of the draft under running calls.
 */
export class TierGuardrails extends Construct {
  /** Each tier's deployed version, for the functions' settings. */
  public readonly refs: Readonly<Record<Tier, GuardrailRef>>;
  private readonly arns: string[] = [];

  constructor(scope: Construct, id: string, props: TierGuardrailsProps) {
    super(scope, id);
    const refs = {} as Record<Tier, GuardrailRef>;
    for (const [tier, policy] of Object.entries(props.policies) as [Tier, GuardrailPolicy][]) {
      const guardrail = new CfnGuardrail(this, `${tier}Guardrail`, {
        name: `${Stack.of(this).stackName}-${tier}`.slice(0, 50),
        description: `What the ${tier} tier's models refuse`,
        blockedInputMessaging: policy.blockedMessage,
        blockedOutputsMessaging: policy.blockedMessage,
        contentPolicyConfig:
          policy.promptAttack === 'NONE'
            ? undefined
            : {
                // Prompt attacks are judged on the input only: Bedrock takes no output strength for them.
                filtersConfig: [{ type: 'PROMPT_ATTACK', inputStrength: policy.promptAttack, outputStrength: 'NONE' }],
              },
        topicPolicyConfig:
          policy.deniedTopics.length === 0
            ? undefined
            : {
                topicsConfig: policy.deniedTopics.map((topic) => ({
                  name: topic.name,
                  definition: topic.definition,
                  examples: topic.examples,
                  type: 'DENY',
                })),
              },
        sensitiveInformationPolicyConfig:
          policy.blockedPii.length === 0
            ? undefined
            : { piiEntitiesConfig: policy.blockedPii.map((type) => ({ type, action: 'BLOCK' })) },
      });
      const version = new CfnGuardrailVersion(this, `${tier}Version`, {
        guardrailIdentifier: guardrail.attrGuardrailId,
        description: 'Published by cdk deploy',
      });
      refs[tier] = { id: guardrail.attrGuardrailId, version: version.attrVersion };
      this.arns.push(guardrail.attrGuardrailArn);
    }
    this.refs = refs;
  }

  /** Lets `grantee` apply the guardrails: within `Converse` (Bedrock checks it) and on their own. */
  grantApply(grantee: IGrantable): Grant {
    return Grant.addToPrincipal({ grantee, actions: ['bedrock:ApplyGuardrail'], resourceArns: this.arns });
  }
}
