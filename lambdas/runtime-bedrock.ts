import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { BedrockCallers } from './adapters/bedrock-callers';
import { BedrockEmbedder } from './adapters/bedrock-embedder';
import { BedrockContentGuardrail } from './adapters/bedrock-guardrail';
import { BedrockModelProvider } from './adapters/bedrock-model-provider';
import { perTenant } from './adapters/per-tenant';
import type { ContentGuardrail, Embedder, ModelProvider } from './core/ports';
import { built, ledger, tenantCredentials, tenantRoutePorts, type Wiring } from './runtime';

/** Bedrock's runtime (models, embeddings, guardrails): only the handlers that call a model import this module. */
const bedrock = /* @__PURE__ */ built((wiring) => new BedrockRuntimeClient(wiring.services.bedrock));

/** Shared models with the function's role; a tenant's own inference profiles with its session. */
const bedrockCallers = /* @__PURE__ */ built(
  (wiring) =>
    new BedrockCallers(
      bedrock(wiring),
      perTenant(
        (tenantId) =>
          new BedrockRuntimeClient({
            ...wiring.services.bedrock,
            credentials: () => tenantCredentials(wiring).credentialsFor(tenantId),
          }),
      ),
    ),
);
export const models = /* @__PURE__ */ built(
  (wiring): ModelProvider => new BedrockModelProvider(bedrockCallers(wiring)),
);
export const contentGuardrail = /* @__PURE__ */ built(
  (wiring): ContentGuardrail => new BedrockContentGuardrail(bedrock(wiring)),
);
export const embedder = /* @__PURE__ */ built((wiring): Embedder => new BedrockEmbedder(bedrockCallers(wiring)));

/** What every metered tenant route uses: a tenant route's ports, the ledger, the embedder. */
export function meteredRoutePorts(wiring: Wiring) {
  return { ...tenantRoutePorts(wiring), ledger: ledger(wiring), embedder: embedder(wiring) };
}
