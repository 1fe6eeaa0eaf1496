/** Longest a tenant API handler runs (its Lambda timeout); API Gateway stops waiting at 29 s anyway. */
export const HANDLER_TIMEOUT_SECONDS = 30;

/**
 * Longest a streamed route's handler runs: a long generation, streamed, outlives API Gateway's 29 s
 * for buffered answers. Its integration waits as long.
 */
export const STREAMING_HANDLER_TIMEOUT_SECONDS = 300;

/**
 * Longest any tenant API handler runs: what a reservation must outlive (else a late settle bills
 * nothing) and what offboarding must wait out (else a late call writes after the purge).
 */
export const LONGEST_HANDLER_TIMEOUT_SECONDS = Math.max(HANDLER_TIMEOUT_SECONDS, STREAMING_HANDLER_TIMEOUT_SECONDS);
