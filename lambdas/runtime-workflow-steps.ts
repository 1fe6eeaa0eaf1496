import { audit, documents, ledger, registry, responseCache, sessions, storedResponses, type Wiring } from './runtime';
import { inferenceProfiles } from './runtime-bedrock-control';
import { fileStore } from './runtime-s3';
import { adapterHost } from './runtime-sagemaker';
import { vectors } from './runtime-vectors';

/** What the tenant workflows' steps (offboarding, placement) take: the registry and every store of tenant data. */
export function workflowStepDeps(wiring: Wiring) {
  return {
    settings: wiring.settings,
    registry: registry(wiring),
    ledger: ledger(wiring),
    audit: audit(wiring),
    documents: documents(wiring),
    files: fileStore(wiring),
    sessions: sessions(wiring),
    cache: responseCache(wiring),
    responses: storedResponses(wiring),
    vectors: vectors(wiring),
    adapterHost: adapterHost(wiring),
    inferenceProfiles: inferenceProfiles(wiring),
    now: Date.now,
  };
}
