import { ArnFormat, Stack } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Grant } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { ModelCatalog } from '../../contract/catalog';

export interface ModelGatewayProps {
  /** Public model names and the Bedrock models that serve them. */
  readonly catalog: ModelCatalog;
}

/** The shared base models: who may invoke which Bedrock model, and nothing else. */
export class ModelGateway extends Construct {
  public readonly catalog: ModelCatalog;

  constructor(scope: Construct, id: string, props: ModelGatewayProps) {
    super(scope, id);
    if (Object.keys(props.catalog).length === 0) throw new Error('model catalog must name at least one model');
    this.catalog = props.catalog;
  }

  /** `bedrock:InvokeModel` (what `Converse` needs) on exactly the catalog's foundation models. */
  grantInvoke(grantee: IGrantable): Grant {
    const stack = Stack.of(this);
    const bedrockModelIds = Object.values(this.catalog).flatMap((model) =>
      'bedrockModelId' in model ? [model.bedrockModelId] : [],
    );
    const resourceArns = [...new Set(bedrockModelIds)].map((modelId) =>
      stack.formatArn({
        service: 'bedrock',
        account: '',
        resource: 'foundation-model',
        resourceName: modelId,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    );
    return Grant.addToPrincipal({ grantee, actions: ['bedrock:InvokeModel'], resourceArns });
  }
}
