import { ADAPTER_NAME_PATTERN } from '../../contract/adapters';
import * as z from '../../contract/zod';

/** A tenant's LoRA adapter, as the registry keeps it. */
export const adapterRecordSchema = z.object({
  name: z.string().check(z.regex(ADAPTER_NAME_PATTERN)),
  artifactUrl: z.string(),
  /** Its inference component on the endpoint. */
  componentName: z.string(),
  /** The base component it runs on. */
  baseComponentName: z.string(),
  /** `Deleting`: its removal was accepted and its component is going; a repeated removal finishes it. */
  status: z.enum(['Creating', 'InService', 'Failed', 'Deleting']),
  /** SageMaker's reason, when creating it failed. */
  failureReason: z.optional(z.string()),
  createdAt: z.string(),
});
export type AdapterRecord = z.infer<typeof adapterRecordSchema>;
