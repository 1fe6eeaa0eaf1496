import * as z from './zod';

/** What a plane's `PlaneResources` stack output holds: where a migration finds its stores. */
export const planeResourcesSchema = z.object({
  region: z.string().check(z.minLength(1)),
  apiUrl: z.string().check(z.url()),
  tenantTableName: z.string().check(z.minLength(1)),
  ledgerTableName: z.string().check(z.minLength(1)),
  auditTableName: z.string().check(z.minLength(1)),
  documentTableName: z.string().check(z.minLength(1)),
  opensearchEndpoint: z.string().check(z.url()),
  vectorBucketName: z.string().check(z.minLength(3)),
  /** The plane's files bucket; absent: recorded by a deploy of a plane that had none yet. */
  filesBucketName: z.optional(z.string().check(z.minLength(3))),
  ingestQueueUrl: z.string().check(z.url()),
  /** The plane's GPU endpoint for tenants' adapters; absent: it has none. */
  adapterEndpoint: z.optional(
    z.object({
      endpointName: z.string().check(z.minLength(1)),
      baseComponents: z.readonly(z.record(z.string(), z.string())),
      artifactBuckets: z.readonly(z.array(z.string())),
    }),
  ),
});
export type PlaneResources = z.infer<typeof planeResourcesSchema>;

/** The stack output that names a plane's resources, in `cdk deploy --outputs-file` (key prefixed by construct path). */
export const PLANE_RESOURCES_OUTPUT = 'PlaneResources';
