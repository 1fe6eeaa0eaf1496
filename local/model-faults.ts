/**
 * Faults a local model can be told to show, so fallbacks and refusals can be tried and seen without a
 * real provider misbehaving: `throttle` answers Bedrock's 429 `ThrottlingException`, `error` its 500
 * `InternalServerException`, `timeout` never answers (the platform's deadline ends the call).
 */
export const MODEL_FAULTS = ['throttle', 'error', 'timeout'] as const;
export type ModelFault = (typeof MODEL_FAULTS)[number];

/** A model's fault by catalog id. */
export type ModelFaults = Readonly<Record<string, ModelFault>>;

const isFault = (value: string): value is ModelFault => (MODEL_FAULTS as readonly string[]).includes(value);

/**
 * `LOCAL_MODEL_FAULTS`, e.g. `nova-micro:throttle,nova-lite:error`: each model of `known` (catalog ids)
 * with its fault. Anything else is an error naming what was wrong, before the platform starts.
 */
export function parseModelFaults(spec: string, known: readonly string[]): ModelFaults {
  const faults: Record<string, ModelFault> = {};
  for (const entry of spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [model, fault, ...rest] = entry.split(':');
    if (rest.length > 0 || !fault || !isFault(fault)) {
      throw new Error(`LOCAL_MODEL_FAULTS: '${entry}' is not <model>:${MODEL_FAULTS.join('|')}`);
    }
    if (!known.includes(model)) throw new Error(`LOCAL_MODEL_FAULTS: '${model}' is not a model of the catalog`);
    faults[model] = fault;
  }
  return faults;
}

/** The body of `PUT /local/model-faults`: a model and its fault, or `null` to clear it. */
export function modelFaultChange(body: unknown, known: readonly string[]): { model: string; fault?: ModelFault } {
  const { model, fault } = (body ?? {}) as { model?: unknown; fault?: unknown };
  if (typeof model !== 'string' || !known.includes(model)) {
    throw new Error(`'model' must be a model of the catalog: ${known.join(', ')}`);
  }
  if (fault === null) return { model };
  if (typeof fault !== 'string' || !isFault(fault))
    throw new Error(`'fault' must be one of ${MODEL_FAULTS.join(', ')}, or null`);
  return { model, fault };
}
