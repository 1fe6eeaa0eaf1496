import { resolve } from 'node:path';
import { platformConfig } from '../lib/config';
import { parseModelFaults } from '../local/model-faults';
import { faultableModels, operatorTokenFile, startLocalPlatform } from '../local/platform';

/** `npm start`: the whole platform on 127.0.0.1, no AWS account needed. */
async function main() {
  const port = Number(process.env.PORT ?? 8787);
  const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');
  // LOCAL_INGEST_WORKER=off: queued documents wait in the queue until a run with the worker.
  const ingestWorker = process.env.LOCAL_INGEST_WORKER !== 'off';
  // Local mode runs as a deployment with the adapter endpoint: the local SageMaker costs no GPU.
  const config = platformConfig((key) => ({ adapterInstanceType: 'ml.g5.2xlarge' })[key]);
  // LOCAL_MODEL_WORD_DELAY_MS: the local model streams a word every so many ms, like a real one.
  const modelWordDelayMs = Number(process.env.LOCAL_MODEL_WORD_DELAY_MS ?? 0);
  // LOCAL_MODEL_FAULTS=nova-micro:throttle,nova-lite:error: those models throttle or fail until told otherwise.
  const modelFaults = parseModelFaults(process.env.LOCAL_MODEL_FAULTS ?? '', faultableModels(config));
  const platform = await startLocalPlatform({ port, dataDir, ingestWorker, config, modelWordDelayMs, modelFaults });
  console.log(`multi-tenant AI platform (local mode) on ${platform.url}`);
  console.log(`data under ${dataDir}; the local model is deterministic, not a language model`);
  console.log('create a tenant: npm run tenant -- create acme --tier standard');
  // The operator token stays in its file: the console takes it typed in, or after `#key=` in the URL.
  console.log(`usage console: ${platform.url}/console/ (operator token in ${operatorTokenFile(dataDir)})`);
  for (const [model, fault] of Object.entries(modelFaults)) {
    console.log(`model fault: ${model} answers '${fault}' (PUT /local/model-faults changes it)`);
  }
  const stop = async () => {
    await platform.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
