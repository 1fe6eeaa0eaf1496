declare module 'dynalite' {
  import type { Server } from 'node:http';

  export interface DynaliteOptions {
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
  }

  export default function dynalite(options?: DynaliteOptions): Server;
}

/** dynalite's store, which `dynalite()` creates with `create` and its server's `close` closes (only once listened). */
declare module 'dynalite/db' {
  import type { DynaliteOptions } from 'dynalite';

  interface DynaliteStore {
    /** Waits for pending operations, then closes the database (LevelDB releases its lock). */
    lifecycleManager: { gracefulClose(): Promise<void> };
  }

  const db: { create(options?: DynaliteOptions): DynaliteStore };
  export = db;
}
