/**
 * Holds back generated text that might be the start of a stop string, so a
 * stream never shows text that a later stop string would cut off.
 */
export class StopMatcher {
  private pending = '';
  private readonly holdBack: number;
  stopped = false;

  constructor(private readonly stops: readonly string[]) {
    this.holdBack = stops.reduce((longest, stop) => Math.max(longest, stop.length - 1), 0);
  }

  /** Adds new text; returns the text that is now safe to show. */
  push(text: string): string {
    if (this.stopped) return '';
    this.pending += text;
    const cut = this.firstStop();
    if (cut >= 0) {
      this.stopped = true;
      const safe = this.pending.slice(0, cut);
      this.pending = '';
      return safe;
    }
    const safeLength = Math.max(0, this.pending.length - this.holdBack);
    const safe = this.pending.slice(0, safeLength);
    this.pending = this.pending.slice(safeLength);
    return safe;
  }

  /** The held-back text, at the end of a generation that no stop string ended. */
  flush(): string {
    const rest = this.stopped ? '' : this.pending;
    this.pending = '';
    return rest;
  }

  private firstStop(): number {
    let first = -1;
    for (const stop of this.stops) {
      if (stop.length === 0) continue;
      const at = this.pending.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    return first;
  }
}
