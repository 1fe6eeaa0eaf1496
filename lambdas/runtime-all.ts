import {
  audit,
  batches,
  budgetAlertMarks,
  documents,
  ledger,
  metrics,
  type PlatformDeps,
  partitions,
  registry,
  reports,
  responseCache,
  sessions,
  storedResponses,
  tenantAdapters,
  tenantKeys,
  tenantPrompts,
  type Wiring,
} from './runtime';
import { adapterModels } from './runtime-adapter-models';
import { contentGuardrail, embedder, models } from './runtime-bedrock';
import { batchInference, inferenceProfiles } from './runtime-bedrock-control';
import { budgetEvents, placement } from './runtime-eventbridge';
import { tokens } from './runtime-jwt';
import { fileStore } from './runtime-s3';
import { adapterHost } from './runtime-sagemaker';
import { adapterWorkflow, offboarding } from './runtime-sfn';
import { queue } from './runtime-sqs';
import { vectors } from './runtime-vectors';

/** Every adapter of a wiring: for the local platform and the tests, which serve every handler at once. */
export function allDeps(wiring: Wiring): PlatformDeps {
  return {
    settings: wiring.settings,
    registry: registry(wiring),
    ledger: ledger(wiring),
    audit: audit(wiring),
    metrics: metrics(wiring),
    reports: reports(wiring),
    models: models(wiring),
    embedder: embedder(wiring),
    inferenceProfiles: inferenceProfiles(wiring),
    vectors: vectors(wiring),
    documents: documents(wiring),
    files: fileStore(wiring),
    batches: batches(wiring),
    ...(wiring.settings.batchInferenceRoleArn && { batchInference: batchInference(wiring) }),
    sessions: sessions(wiring),
    cache: responseCache(wiring),
    responses: storedResponses(wiring),
    contentGuardrail: contentGuardrail(wiring),
    queue: queue(wiring),
    offboarding: offboarding(wiring),
    placement: placement(wiring),
    budgetAlertMarks: budgetAlertMarks(wiring),
    budgetEvents: budgetEvents(wiring),
    partitions: partitions(wiring),
    adapterHost: adapterHost(wiring),
    adapterWorkflow: adapterWorkflow(wiring),
    adapterModels: adapterModels(wiring),
    adapters: tenantAdapters(wiring),
    keys: tenantKeys(wiring),
    prompts: tenantPrompts(wiring),
    tokens: tokens(wiring),
    now: Date.now,
  };
}
