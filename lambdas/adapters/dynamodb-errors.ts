/** By name, not `instanceof`: a bundle may hold more than one copy of the SDK's error classes. */
export function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}
