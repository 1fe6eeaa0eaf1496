import { Aws, Duration, Stack } from 'aws-cdk-lib';
import { PredefinedMetric, ScalableTarget, ServiceNamespace } from 'aws-cdk-lib/aws-applicationautoscaling';
import {
  type Grant,
  Grant as IamGrant,
  type IGrantable,
  PolicyStatement,
  Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { CfnEndpoint, CfnEndpointConfig, CfnInferenceComponent, CfnModel } from 'aws-cdk-lib/aws-sagemaker';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { type AdapterEndpointSettings, baseComponentName } from '../../contract/adapters';
import type { AdapterEndpointConfig } from '../config';

export interface AdapterEndpointProps {
  /**
   * Instance type and counts, container image, base model, base components with their accelerator
   * shares and copy counts, LoRA limits: see `adapterEndpointConfig` in `lib/config.ts`.
   */
  readonly config: AdapterEndpointConfig;
  /** The SageMaker endpoint's name; base components are named after it. */
  readonly endpointName: string;
  /**
   * A silo's own key, for the endpoint's storage volumes.
   * @default - SageMaker's default encryption
   */
  readonly encryptionKey?: IKey;
}

/** Copies of a base component scale to keep this many invocations per copy a minute. */
const INVOCATIONS_PER_COPY = 4;

/**
 * One GPU endpoint serving a frozen base model and tenants' LoRA adapters: a model whose LMI (vLLM)
 * container has LoRA enabled, an endpoint config with managed instance scaling and least-outstanding
 * -requests routing (no model on the variant: inference components bring it), and one base
 * inference component per key with its share of each instance's accelerators, its copy count
 * scaled by Application Auto Scaling. Tenants' adapter components are created at run time on top of
 * a base component (`BaseInferenceComponentName`), with no compute of their own.
 */
export class AdapterEndpoint extends Construct {
  public readonly endpointName: string;
  /** Base component names by key. */
  public readonly baseComponentNames: Readonly<Record<string, string>>;
  /** What the functions are told (the environment contract). */
  public readonly settings: AdapterEndpointSettings;
  public readonly role: Role;

  constructor(scope: Construct, id: string, props: AdapterEndpointProps) {
    super(scope, id);
    const { config } = props;
    this.endpointName = props.endpointName;
    this.role = this.executionRole(props);

    // The LMI container's LoRA settings (adapters in GPU and CPU memory, the largest rank) and tool parsing.
    const environment: Record<string, string> = {
      OPTION_ROLLING_BATCH: 'vllm',
      OPTION_TENSOR_PARALLEL_DEGREE: 'max',
      OPTION_ENABLE_LORA: 'true',
      OPTION_MAX_LORAS: String(config.lora.maxGpuAdapters),
      OPTION_MAX_CPU_LORAS: String(config.lora.maxCpuAdapters),
      OPTION_MAX_LORA_RANK: String(config.lora.maxRank),
      // vLLM parses the model's tool calls into OpenAI's `tool_calls` (LMI's tool-calling options).
      ...(config.toolCallParser && {
        OPTION_ENABLE_AUTO_TOOL_CHOICE: 'true',
        OPTION_TOOL_CALL_PARSER: config.toolCallParser,
      }),
      ...(!config.baseModel.startsWith('s3://') && { HF_MODEL_ID: config.baseModel }),
    };
    const model = new CfnModel(this, 'BaseModel', {
      executionRoleArn: this.role.roleArn,
      primaryContainer: {
        image: config.image,
        environment,
        ...(config.baseModel.startsWith('s3://') && {
          modelDataSource: {
            s3DataSource: { s3Uri: config.baseModel, s3DataType: 'S3Prefix', compressionType: 'None' },
          },
        }),
      },
    });
    const endpointConfig = new CfnEndpointConfig(this, 'Config', {
      executionRoleArn: this.role.roleArn,
      kmsKeyId: props.encryptionKey?.keyArn,
      productionVariants: [
        {
          variantName: 'AllTraffic',
          instanceType: config.instanceType,
          initialInstanceCount: config.minInstances,
          managedInstanceScaling: {
            status: 'ENABLED',
            minInstanceCount: config.minInstances,
            maxInstanceCount: config.maxInstances,
          },
          routingConfig: { routingStrategy: 'LEAST_OUTSTANDING_REQUESTS' },
        },
      ],
    });
    const endpoint = new CfnEndpoint(this, 'Endpoint', {
      endpointName: props.endpointName,
      endpointConfigName: endpointConfig.attrEndpointConfigName,
    });

    const names: Record<string, string> = {};
    for (const [key, share] of Object.entries(config.baseComponents)) {
      const name = baseComponentName(props.endpointName, key);
      names[key] = name;
      const component = new CfnInferenceComponent(this, `Base-${key}`, {
        inferenceComponentName: name,
        endpointName: endpoint.attrEndpointName,
        variantName: 'AllTraffic',
        // The model carries the container and its LoRA environment: the API takes a model or a container.
        specification: {
          modelName: model.attrModelName,
          computeResourceRequirements: {
            numberOfAcceleratorDevicesRequired: share.acceleratorDevices,
            minMemoryRequiredInMb: share.memoryMb,
          },
        },
        runtimeConfig: { copyCount: share.minCopies },
      });
      const copies = new ScalableTarget(this, `Copies-${key}`, {
        serviceNamespace: ServiceNamespace.SAGEMAKER,
        resourceId: `inference-component/${name}`,
        scalableDimension: 'sagemaker:inference-component:DesiredCopyCount',
        minCapacity: share.minCopies,
        maxCapacity: share.maxCopies,
      });
      copies.node.addDependency(component);
      copies.scaleToTrackMetric(`InvocationsPerCopy-${key}`, {
        predefinedMetric: PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_INVOCATIONS_PER_COPY,
        targetValue: INVOCATIONS_PER_COPY,
        scaleInCooldown: Duration.seconds(300),
        scaleOutCooldown: Duration.seconds(60),
      });
    }
    this.baseComponentNames = names;
    this.settings = {
      endpointName: props.endpointName,
      baseComponents: names,
      artifactBuckets: props.config.artifactBuckets,
    };
  }

  /** `InvokeEndpoint` on this endpoint's components: the chat function. */
  grantInvoke(grantee: IGrantable): Grant {
    return IamGrant.addToPrincipal({
      grantee,
      actions: ['sagemaker:InvokeEndpoint', 'sagemaker:InvokeEndpointWithResponseStream'],
      resourceArns: [this.arn('endpoint', this.endpointName.toLowerCase())],
    });
  }

  /** Creating, describing and deleting tenants' adapter components (`ad-*`) on this endpoint. */
  grantManageAdapters(grantee: IGrantable): Grant {
    if (Construct.isConstruct(grantee.grantPrincipal)) {
      NagSuppressions.addResourceSuppressions(
        grantee.grantPrincipal,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              "Tenants' adapter components are created at run time, named `ad-<tenant>-<adapter>-<hash>`: the prefix is all IAM can know of them.",
            appliesTo: [
              'Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:inference-component/ad-*',
            ],
          },
        ],
        true,
      );
    }
    return IamGrant.addToPrincipal({
      grantee,
      actions: [
        'sagemaker:CreateInferenceComponent',
        // A component is created with its tenant's tag, which SageMaker authorizes as AddTags.
        'sagemaker:AddTags',
        'sagemaker:DescribeInferenceComponent',
        'sagemaker:DeleteInferenceComponent',
      ],
      resourceArns: [this.arn('inference-component', 'ad-*'), this.arn('endpoint', this.endpointName.toLowerCase())],
    });
  }

  private arn(resource: string, name: string): string {
    return `arn:${Aws.PARTITION}:sagemaker:${Stack.of(this).region}:${Stack.of(this).account}:${resource}/${name}`;
  }

  /** The role SageMaker runs the endpoint with: pull the image, read adapter artifacts, write its logs and metrics. */
  private executionRole(props: AdapterEndpointProps): Role {
    const role = new Role(this, 'ExecutionRole', { assumedBy: new ServicePrincipal('sagemaker.amazonaws.com') });
    role.addToPolicy(new PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }));
    role.addToPolicy(
      new PolicyStatement({
        actions: ['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'],
        resources: [imageRepositoryArn(props.config.image)],
      }),
    );
    const { region, account } = Stack.of(this);
    role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`arn:${Aws.PARTITION}:logs:${region}:${account}:log-group:/aws/sagemaker/*`],
      }),
    );
    role.addToPolicy(
      new PolicyStatement({
        actions: ['cloudwatch:PutMetricData'],
        resources: ['*'],
        conditions: { StringEquals: { 'cloudwatch:namespace': ['/aws/sagemaker/Endpoints', 'AWS/SageMaker'] } },
      }),
    );
    // Tenants' adapter artifacts: objects of the configured buckets, and of no other.
    const buckets = props.config.artifactBuckets.map((bucket) => `arn:${Aws.PARTITION}:s3:::${bucket}`);
    if (buckets.length > 0) {
      role.addToPolicy(
        new PolicyStatement({
          actions: ['s3:GetObject', 's3:ListBucket'],
          resources: buckets.flatMap((bucket) => [bucket, `${bucket}/*`]),
        }),
      );
    }
    props.encryptionKey?.grant(role, 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:CreateGrant', 'kms:DescribeKey');
    NagSuppressions.addResourceSuppressions(
      role,
      [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData (limited by namespace) accept only Resource *; the endpoint's log groups are created by SageMaker under /aws/sagemaker/; adapter artifacts are objects of the granted buckets.",
        },
      ],
      true,
    );
    return role;
  }
}

/** The ECR repository ARN of an image URI `<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`. */
function imageRepositoryArn(image: string): string {
  const match = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com\/([^:@]+)/.exec(image);
  if (!match) throw new Error(`adapterImage must be an ECR image URI, got '${image}'`);
  return `arn:${Aws.PARTITION}:ecr:${match[2]}:${match[1]}:repository/${match[3]}`;
}
