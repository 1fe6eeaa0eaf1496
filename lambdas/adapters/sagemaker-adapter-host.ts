import {
  CreateInferenceComponentCommand,
  DeleteInferenceComponentCommand,
  DescribeInferenceComponentCommand,
  type SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { TENANT_COST_TAG } from '../../contract/tenancy';
import type { AdapterHost } from '../core/ports';

/** SageMaker answers a name it does not know with a ValidationException saying so. */
const isNotFound = (error: unknown) =>
  (error as { name?: string }).name === 'ValidationException' && /Could not find/i.test((error as Error).message);

/**
 * Tenants' adapters as SageMaker inference components: each references its base component
 * (`BaseInferenceComponentName`) and loads its artifact from S3; it has no compute of its own.
 */
export class SageMakerAdapterHost implements AdapterHost {
  constructor(private readonly client: SageMakerClient) {}

  async create(component: {
    componentName: string;
    baseComponentName: string;
    endpointName: string;
    artifactUrl: string;
    tenantId: string;
  }): Promise<void> {
    await this.client.send(
      new CreateInferenceComponentCommand({
        InferenceComponentName: component.componentName,
        EndpointName: component.endpointName,
        Specification: {
          BaseInferenceComponentName: component.baseComponentName,
          Container: { ArtifactUrl: component.artifactUrl },
        },
        Tags: [{ Key: TENANT_COST_TAG, Value: component.tenantId }],
      }),
    );
  }

  async describe(componentName: string) {
    try {
      const described = await this.client.send(
        new DescribeInferenceComponentCommand({ InferenceComponentName: componentName }),
      );
      return {
        status: described.InferenceComponentStatus ?? 'Creating',
        ...(described.FailureReason && { failureReason: described.FailureReason }),
      };
    } catch (error) {
      if (isNotFound(error)) return { status: 'Failed' as const, failureReason: 'the inference component is gone' };
      throw error;
    }
  }

  async delete(componentName: string): Promise<void> {
    try {
      await this.client.send(new DeleteInferenceComponentCommand({ InferenceComponentName: componentName }));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}
