import { Match, type Template } from 'aws-cdk-lib/assertions';
import { budget, POOL, synthesized } from './synthesized';

/** Each tier's Bedrock guardrail in the template, its published version in the functions' settings. */
describe('tier guardrails', () => {
  // GIVEN `cdk synth` with no context (the pool stack's default config), synthesized once (see synthesized.ts)
  let template: Template;
  beforeAll(async () => {
    template = (await synthesized('defaults')).template(POOL);
  }, budget('defaults'));

  it('creates a guardrail per tier: prompt attacks on the input, the denied topics, blocked card and SSN numbers', () => {
    template.resourceCountIs('AWS::Bedrock::Guardrail', 3);
    template.resourceCountIs('AWS::Bedrock::GuardrailVersion', 3);
    for (const tier of ['basic', 'standard', 'enterprise']) {
      template.hasResourceProperties('AWS::Bedrock::Guardrail', {
        Name: `${POOL}-${tier}`,
        BlockedInputMessaging: 'This request was blocked by the content policy.',
        ContentPolicyConfig: {
          FiltersConfig: [{ Type: 'PROMPT_ATTACK', InputStrength: 'HIGH', OutputStrength: 'NONE' }],
        },
        TopicPolicyConfig: {
          TopicsConfig: [Match.objectLike({ Name: 'Investment advice', Type: 'DENY', Examples: Match.anyValue() })],
        },
        SensitiveInformationPolicyConfig: {
          PiiEntitiesConfig: [
            { Type: 'US_SOCIAL_SECURITY_NUMBER', Action: 'BLOCK' },
            { Type: 'CREDIT_DEBIT_CARD_NUMBER', Action: 'BLOCK' },
          ],
        },
      });
    }
  });

  it("gives the functions each tier's published version, and lets only the chat function and the batch runner apply them", () => {
    const fns = Object.values(template.findResources('AWS::Lambda::Function'));
    const chat = fns.find((fn) => fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === 'chat-completions');
    const guardrails = JSON.stringify(chat?.Properties.Environment.Variables.GUARDRAILS);
    for (const tier of ['basic', 'standard', 'enterprise']) {
      expect(guardrails).toContain(`${tier}Guardrail`);
      expect(guardrails).toContain(`${tier}Version`);
    }
    const apply = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) =>
      (policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[])
        .filter((statement) => [statement.Action].flat().includes('bedrock:ApplyGuardrail'))
        .map((statement) => ({ roles: policy.Properties.Roles, resources: statement.Resource })),
    );
    // The chat function, and the work queue's worker, which runs batches' chat lines.
    expect(apply).toHaveLength(2);
    expect(apply.map((grant) => JSON.stringify(grant.roles)).sort()).toEqual([
      expect.stringContaining('IngestWorker'),
      expect.stringContaining('ChatCompletions'),
    ]);
    for (const grant of apply) expect(grant.resources).toHaveLength(3);
  });
});
