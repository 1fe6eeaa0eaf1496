import { type Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { adapterEndpointConfig, DEFAULT_ADAPTER_IMAGE } from '../../lib/config';
import { stateMachineDefinitions } from '../support/templates';
import { budget, POOL, synthesized } from './synthesized';

// GIVEN `cdk synth -c adapterInstanceType=ml.g5.12xlarge -c adapterComponents=standard:2,enterprise:2`
// (ADAPTER_CONTEXT), synthesized once (see synthesized.ts)
let template: Template;
let annotations: Annotations;
beforeAll(async () => {
  const adapters = await synthesized('adapters');
  template = adapters.template(POOL);
  annotations = adapters.annotations(POOL);
}, budget('adapters'));
const ENDPOINT = 'MultiTenantAiPlatform-adapters';

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

function statementsOfRole(logicalIdPattern: RegExp): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: { Ref: string }) => logicalIdPattern.test(role.Ref)))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

describe('AdapterEndpoint', () => {
  it('runs the base model in the LMI container with LoRA enabled and its limits, parsing tool calls', () => {
    template.hasResourceProperties('AWS::SageMaker::Model', {
      ExecutionRoleArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('AdaptersExecutionRole'), 'Arn'] },
      PrimaryContainer: {
        // The template names the image; no test calls it.
        Image: DEFAULT_ADAPTER_IMAGE,
        Environment: {
          HF_MODEL_ID: 'Qwen/Qwen2.5-7B-Instruct',
          OPTION_ROLLING_BATCH: 'vllm',
          OPTION_TENSOR_PARALLEL_DEGREE: 'max',
          OPTION_ENABLE_LORA: 'true',
          OPTION_MAX_LORAS: '8',
          OPTION_MAX_CPU_LORAS: '64',
          OPTION_MAX_LORA_RANK: '64',
          // The default base model's tool-call parser: its answers' tool calls become OpenAI's tool_calls.
          OPTION_ENABLE_AUTO_TOOL_CHOICE: 'true',
          OPTION_TOOL_CALL_PARSER: 'hermes',
        },
      },
    });
  });

  it('configures the endpoint for inference components: no model on the variant, managed scaling, least outstanding requests', () => {
    const [config] = Object.values(template.findResources('AWS::SageMaker::EndpointConfig'));
    expect(config.Properties.ExecutionRoleArn).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/AdaptersExecutionRole/), 'Arn'],
    });
    expect(config.Properties.ProductionVariants).toEqual([
      {
        VariantName: 'AllTraffic',
        InstanceType: 'ml.g5.12xlarge',
        InitialInstanceCount: 1,
        ManagedInstanceScaling: { Status: 'ENABLED', MinInstanceCount: 1, MaxInstanceCount: 3 },
        RoutingConfig: { RoutingStrategy: 'LEAST_OUTSTANDING_REQUESTS' },
      },
    ]);
    template.hasResourceProperties('AWS::SageMaker::Endpoint', {
      EndpointName: ENDPOINT,
      EndpointConfigName: { 'Fn::GetAtt': [Match.stringLikeRegexp('AdaptersConfig'), 'EndpointConfigName'] },
    });
  });

  it('slices the GPUs: one base component per tier with its accelerator share, copies scaled by Application Auto Scaling', () => {
    const components = Object.values(template.findResources('AWS::SageMaker::InferenceComponent'));
    expect(components.map((c) => c.Properties)).toEqual([
      {
        InferenceComponentName: `${ENDPOINT}-base-standard`,
        EndpointName: { 'Fn::GetAtt': [expect.stringMatching(/AdaptersEndpoint/), 'EndpointName'] },
        VariantName: 'AllTraffic',
        Specification: {
          ModelName: { 'Fn::GetAtt': [expect.stringMatching(/AdaptersBaseModel/), 'ModelName'] },
          ComputeResourceRequirements: { NumberOfAcceleratorDevicesRequired: 2, MinMemoryRequiredInMb: 49_152 },
        },
        RuntimeConfig: { CopyCount: 1 },
      },
      expect.objectContaining({ InferenceComponentName: `${ENDPOINT}-base-enterprise` }),
    ]);
    const targets = Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalableTarget'));
    expect(targets.map((t) => t.Properties)).toEqual(
      ['standard', 'enterprise'].map((key) =>
        expect.objectContaining({
          ServiceNamespace: 'sagemaker',
          ResourceId: `inference-component/${ENDPOINT}-base-${key}`,
          ScalableDimension: 'sagemaker:inference-component:DesiredCopyCount',
          MinCapacity: 1,
          MaxCapacity: 4,
        }),
      ),
    );
    for (const target of Object.values(template.findResources('AWS::ApplicationAutoScaling::ScalableTarget'))) {
      expect(target.DependsOn).toEqual([expect.stringMatching(/AdaptersBase(standard|enterprise)/)]);
    }
    template.resourcePropertiesCountIs(
      'AWS::ApplicationAutoScaling::ScalingPolicy',
      {
        PolicyType: 'TargetTrackingScaling',
        TargetTrackingScalingPolicyConfiguration: {
          PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerInferenceComponentInvocationsPerCopy' },
          TargetValue: 4,
          ScaleInCooldown: 300,
          ScaleOutCooldown: 60,
        },
      },
      2,
    );
  });

  it('lets SageMaker read adapter artifacts from the configured buckets only, and pull only its image', () => {
    const statements = statementsOfRole(/AdaptersExecutionRole/);
    const s3 = statements.find((s) => [s.Action].flat().includes('s3:GetObject'));
    expect(s3?.Resource).toEqual([
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::tenant-adapters']] },
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':s3:::tenant-adapters/*']] },
    ]);
    const pull = statements.find((s) => [s.Action].flat().includes('ecr:BatchGetImage'));
    expect(JSON.stringify(pull?.Resource)).toContain(':ecr:us-east-1:763104351884:repository/djl-inference');
    expect(statements.flatMap((s) => [s.Action].flat()).some((action) => action.endsWith(':*'))).toBe(false);
  });

  it('lets the chat function invoke the endpoint, the admin function and the workflows manage `ad-*` components', () => {
    const invoke = statementsOfRole(/ChatCompletions/).find((s) =>
      [s.Action].flat().includes('sagemaker:InvokeEndpoint'),
    );
    expect(JSON.stringify(invoke?.Resource)).toContain(`:endpoint/${ENDPOINT.toLowerCase()}`);
    for (const role of [/TenantApiAdmin/, /AdapterWorkflowSteps/, /OffboardingSteps/]) {
      const manage = statementsOfRole(role).find((s) =>
        [s.Action].flat().includes('sagemaker:CreateInferenceComponent'),
      );
      expect(JSON.stringify(manage?.Resource)).toContain(':inference-component/ad-*');
      expect(manage?.Action).toContain('sagemaker:AddTags');
    }
    // a return's build creates the tenant's components on this endpoint, by its name (the
    // components themselves only with the tenant's tag: placement-pipeline.test.ts)
    const returning = statementsOfRole(/PlacementTenantRunRole/).filter(
      (s) => s.Action === 'sagemaker:CreateInferenceComponent' && !s.Condition,
    );
    expect(returning.map((s) => JSON.stringify(s.Resource))).toEqual([
      expect.stringContaining(`:endpoint/${ENDPOINT.toLowerCase()}`),
    ]);
    template.allResourcesProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          ADAPTER_ENDPOINT: JSON.stringify({
            endpointName: ENDPOINT,
            baseComponents: { standard: `${ENDPOINT}-base-standard`, enterprise: `${ENDPOINT}-base-enterprise` },
            artifactBuckets: ['tenant-adapters'],
          }),
        }),
      },
    });
  });

  it('follows a new adapter in a workflow: wait, poll, until it is settled', () => {
    const { definition } = stateMachineDefinitions(template).find(
      (machine) => machine.name === 'MultiTenantAiPlatform-adapters',
    ) ?? { definition: undefined };
    expect(definition.StartAt).toBe('WaitForSageMaker');
    expect(definition.States.WaitForSageMaker).toEqual({ Type: 'Wait', Seconds: 30, Next: 'Poll' });
    expect(definition.States.Poll).toMatchObject({
      Next: 'Settled',
      Parameters: { Payload: { 'tenantId.$': '$.tenantId', 'name.$': '$.name' } },
    });
    expect(definition.States.Settled).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.poll.status', StringEquals: 'pending', Next: 'WaitForSageMaker' }],
      Default: 'Recorded',
    });
  });

  it('passes cdk-nag AwsSolutions with no unsuppressed error or warning', () => {
    const findings = [
      ...annotations.findError('*', Match.stringLikeRegexp('AwsSolutions-.*')),
      ...annotations.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*')),
    ];
    expect(findings.map((f) => `${f.id}: ${f.entry.data}`)).toEqual([]);
  });
});

describe('adapter endpoint configuration', () => {
  // GIVEN `cdk synth -c adapterInstanceType=ml.g5.2xlarge -c siloTenants=a-bank,b-health
  // -c silo.b-health.adapterInstanceType=ml.g5.12xlarge`, and `cdk synth` with no context
  let silos: Template[];
  let plain: Template;
  beforeAll(
    async () => {
      const withSilos = await synthesized('siloAdapters');
      silos = [`${POOL}-silo-a-bank`, `${POOL}-silo-b-health`].map((silo) => withSilos.template(silo));
      plain = (await synthesized('defaults')).template(POOL);
    },
    budget('siloAdapters', 'defaults'),
  );

  it("gives a silo a GPU endpoint only when its own entry asks for one, never the pool's by default", () => {
    const endpoints = silos.map((silo) => Object.keys(silo.findResources('AWS::SageMaker::Endpoint')));
    expect(endpoints.map((found) => found.length)).toEqual([0, 1]);
    silos[1].hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ InstanceType: 'ml.g5.12xlarge' })],
    });
  });

  it('starts no GPU unless adapterInstanceType is given', () => {
    plain.resourceCountIs('AWS::SageMaker::Endpoint', 0);
    plain.resourceCountIs('AWS::SageMaker::InferenceComponent', 0);
  });

  it('gives a one-GPU instance one shared component, and refuses shares that do not fit the instance', () => {
    const single = adapterEndpointConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge' })[key]);
    expect(single?.baseComponents).toEqual({
      shared: { acceleratorDevices: 1, memoryMb: 24_576, minCopies: 1, maxCopies: 4 },
    });
    expect(() =>
      adapterEndpointConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge', adapterComponents: 'a:1,b:1' })[key]),
    ).toThrow(/use 2 accelerators; ml.g5.2xlarge has 1/);
    expect(() => adapterEndpointConfig((key) => ({ adapterInstanceType: 'ml.t3.medium' })[key])).toThrow(
      /adapterInstanceType is one of/,
    );
  });
});
