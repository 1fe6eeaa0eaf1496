/** Longest a tenant API handler runs (its Lambda timeout); API Gateway stops waiting at 29 s anyway. */
export const HANDLER_TIMEOUT_SECONDS = 30;
