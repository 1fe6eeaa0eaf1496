/**
 * Index names in the OpenSearch domain, as the IAM policies grant them and the adapter uses them:
 * `t-<tenantId>` for a tenant of its own index, one shared index for the basic tier.
 */
export const SHARED_INDEX = 'shared-basic';
export const TENANT_INDEX_PREFIX = 't-';
