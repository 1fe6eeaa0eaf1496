/**
 * The ingest queue as the CDK builds it and the local SQS emulates it: the worker gets `batchSize`
 * jobs an invocation, a job received `maxReceives` times without success goes to the dead-letter
 * queue, and SQS hides a received job for `visibilityTimeoutSeconds`.
 */
export const INGEST_QUEUE = {
  batchSize: 5,
  maxReceives: 3,
  /** Longest one worker invocation runs. */
  workerTimeoutSeconds: 120,
  /** Six worker timeouts, as AWS recommends for a Lambda event source. */
  visibilityTimeoutSeconds: 720,
  deadLetterRetentionDays: 14,
} as const;
