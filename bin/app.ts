import { App } from 'aws-cdk-lib';
import { addPlatformStacks } from '../lib/platform-app';

addPlatformStacks(new App());
