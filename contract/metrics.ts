/** The CloudWatch namespace of the platform's own metrics (embedded metric format lines of the functions). */
export const METRICS_NAMESPACE = 'MultiTenantAiPlatform';

/** The `service` dimension of every platform metric: one for all functions, so each metric sums across them. */
export const METRICS_SERVICE = 'platform';
