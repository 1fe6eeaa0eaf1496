import { S3FileStore } from './adapters/s3-file-store';
import type { FileStore } from './core/ports';
import { built, tenantCredentials } from './runtime';

/**
 * The files bucket's builder, apart from the other adapters: its client is a package the bundler
 * cannot drop, so only the handlers that read or write files import this module. Signed with the
 * tenant's scoped credentials: IAM confines each session to its tenant's prefix.
 */
export const fileStore = /* @__PURE__ */ built(
  (wiring): FileStore =>
    new S3FileStore(wiring.settings.filesBucketName, wiring.services.s3, tenantCredentials(wiring)),
);
