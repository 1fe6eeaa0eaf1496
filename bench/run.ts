import { benchAdapters } from './adapters';
import { benchApis } from './apis';
import { benchBatches } from './batches';
import { benchChat } from './chat';
import { benchCold } from './cold';
import { benchCost } from './cost';
import { benchLedger } from './ledger';
import { benchLocal } from './local';
import { benchMetering } from './metering';
import { benchOverhead } from './overhead';
import { benchPii } from './pii';
import { benchPromote } from './promote';
import { benchRetrieval } from './retrieval';
import { benchSdk } from './sdk';
import { benchStream } from './stream';
import { benchSynth } from './synth';
import { benchVectors } from './vectors';

/** `npm run bench [-- <suite>]`: each suite prints a table. */
const SUITES: Record<string, () => Promise<void>> = {
  adapters: benchAdapters,
  apis: benchApis,
  batch: benchBatches,
  chat: benchChat,
  cold: benchCold,
  cost: benchCost,
  ingest: benchRetrieval,
  ledger: benchLedger,
  local: benchLocal,
  metering: benchMetering,
  overhead: benchOverhead,
  pii: benchPii,
  promote: benchPromote,
  retrieval: benchVectors,
  sdk: benchSdk,
  stream: benchStream,
  synth: benchSynth,
};

const name = process.argv[2] ?? 'chat';
const suite = SUITES[name];
if (!suite) {
  console.error(`unknown benchmark '${name}'; suites: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
suite().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
