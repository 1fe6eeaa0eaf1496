/**
 * Runs `runOnce` every `pollMs` and whenever `runDue` is called, one run at a time: how the local
 * runners stand in for a state machine's waits without two runs racing on the same tenant.
 */
export function serialPoller(runOnce: () => Promise<void>, pollMs: number) {
  let running: Promise<void> = Promise.resolve();
  const runDue = () => {
    running = running.then(runOnce);
    return running;
  };
  const timer = setInterval(() => void runDue(), pollMs);
  timer.unref();
  return { runDue, close: () => clearInterval(timer) };
}
