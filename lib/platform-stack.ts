import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { TenantPlane, type TenantPlaneProps } from './constructs/tenant-plane';

export interface PlatformStackProps extends StackProps, TenantPlaneProps {}

/** The pool stack: one tenant plane that every pooled tenant shares. */
export class PlatformStack extends Stack {
  public readonly plane: TenantPlane;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    // `Default`: the plane's resources keep the logical ids they had when the stack built them itself.
    this.plane = new TenantPlane(this, 'Default', props);
  }
}
