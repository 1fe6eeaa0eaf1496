import { createHash } from 'node:crypto';

/**
 * LoRA adapters on the GPU endpoint, as the CDK builds it and the code calls it: one SageMaker
 * endpoint, base-model inference components by key, and one adapter component per tenant adapter.
 */

/** Where adapter calls go: the endpoint, and the base component of each key (a tier, or `shared`). */
export interface AdapterEndpointSettings {
  readonly endpointName: string;
  /** Base-model inference component names by key; a tier's adapters run on its own key's, else on the first. */
  readonly baseComponents: Readonly<Record<string, string>>;
  /** The buckets adapter artifacts may come from (the endpoint's role reads these only), each under `<tenantId>/`. */
  readonly artifactBuckets: readonly string[];
}

/** Adapter names, as tenants give them. */
export const ADAPTER_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,23}$/;

/** The public model name of a tenant's adapter: OpenAI's fine-tune form, `ft:<base model>:<adapter>`. */
export function adapterModelName(baseModel: string, adapterName: string): string {
  return `ft:${baseModel}:${adapterName}`;
}

/**
 * The adapter's inference component name: unique per endpoint and tenant (SageMaker names are unique
 * per account and region, at most 63 characters), readable, and never reused by another tenant's.
 */
export function adapterComponentName(endpointName: string, tenantId: string, adapterName: string): string {
  const digest = createHash('sha256').update(`${endpointName}\n${tenantId}\n${adapterName}`).digest('hex');
  return `ad-${tenantId.slice(0, 20)}-${adapterName.slice(0, 16)}-${digest.slice(0, 8)}`;
}

/** The name of a base-model inference component: the endpoint's name and the component's key. */
export function baseComponentName(endpointName: string, key: string): string {
  return `${endpointName.slice(0, 40)}-base-${key}`;
}
