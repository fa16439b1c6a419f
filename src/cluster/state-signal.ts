/** Wakes whoever waits for the cluster state to change (the state itself is read after waking). */
export class StateSignal {
  private waiters: (() => void)[] = [];

  /** Resolves at the next change, or after `timeoutMs`. */
  next(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(resolve, timeoutMs) : undefined;
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  fire(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
