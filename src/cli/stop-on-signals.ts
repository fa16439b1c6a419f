/** How `tessera serve` and `tessera router` end on a signal. */

/**
 * SIGTERM or SIGINT drains: no new requests, those in flight finish (or,
 * after the grace period, end with a retryable error), then exit 0. A second
 * signal stops at once.
 */
export function stopOnSignals(server: { drain(graceMs: number): Promise<number>; close(): Promise<void> }, graceMs: number, log: (line: string) => void): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      log(`${signal} again: stopping now`);
      server.close().then(() => process.exit(0), () => process.exit(1));
      return;
    }
    stopping = true;
    log(`${signal}: draining (no new requests; up to ${graceMs / 1000} s for those in flight)`);
    server
      .drain(graceMs)
      .then((aborted) => {
        if (aborted > 0) log(`ended ${aborted} unfinished requests with TESSERA_ERR_DRAINING`);
        log('shutting down');
        return server.close();
      })
      .then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
