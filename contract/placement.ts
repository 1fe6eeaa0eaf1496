import * as z from 'zod';

/** What a plane's `PlaneResources` stack output holds: where a migration finds its stores. */
export const planeResourcesSchema = z.object({
  region: z.string().min(1),
  apiUrl: z.string().url(),
  tenantTableName: z.string().min(1),
  ledgerTableName: z.string().min(1),
  auditTableName: z.string().min(1),
  documentTableName: z.string().min(1),
  opensearchEndpoint: z.string().url(),
  vectorBucketName: z.string().min(3),
  ingestQueueUrl: z.string().url(),
  /** The plane's GPU endpoint for tenants' adapters; absent: it has none. */
  adapterEndpoint: z
    .object({
      endpointName: z.string().min(1),
      baseComponents: z.record(z.string(), z.string()).readonly(),
      artifactBuckets: z.array(z.string()).readonly(),
    })
    .optional(),
});
export type PlaneResources = z.infer<typeof planeResourcesSchema>;

/** The stack output that names a plane's resources, in `cdk deploy --outputs-file` (key prefixed by construct path). */
export const PLANE_RESOURCES_OUTPUT = 'PlaneResources';
