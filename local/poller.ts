/**
 * Runs `runOnce` every `pollMs` (0: never by itself) and whenever `runDue` is called, one run at a
 * time: how the local runners stand in for a state machine's waits without two runs racing on the
 * same tenant.
 */
export function serialPoller(runOnce: () => Promise<void>, pollMs: number) {
  let running: Promise<void> = Promise.resolve();
  const runDue = () => {
    running = running.then(runOnce);
    return running;
  };
  const timer = pollMs > 0 ? setInterval(() => void runDue(), pollMs) : undefined;
  timer?.unref();
  return { runDue, close: () => clearInterval(timer) };
}
