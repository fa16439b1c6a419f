/**
 * Tokens routed to each expert of each MoE layer. Expert load imbalance is
 * the first thing an operator asks about an MoE deployment, so every MoE
 * forward records its counts here; traces and /metrics read them.
 */

export interface ExpertLoadSnapshot {
  /** Forward passes recorded per layer. */
  steps: number[];
  /** [numLayers][numExperts] tokens routed so far; empty rows for dense layers. */
  tokens: number[][];
}

export class ExpertLoad {
  /** Per layer: [numExperts] running totals, or undefined for dense layers. */
  private readonly totals: (Float64Array | undefined)[];
  private readonly steps: number[];

  constructor(numLayers: number) {
    this.totals = new Array<Float64Array | undefined>(numLayers).fill(undefined);
    this.steps = new Array<number>(numLayers).fill(0);
  }

  /** Adds one forward pass's [numExperts] token counts of a layer. */
  record(layer: number, counts: Int32Array): void {
    let totals = this.totals[layer];
    if (!totals) {
      totals = new Float64Array(counts.length);
      this.totals[layer] = totals;
    }
    for (let e = 0; e < counts.length; e++) totals[e] += counts[e];
    this.steps[layer]++;
  }

  /** [numExperts] tokens routed to each expert of a layer so far (empty for a dense layer). */
  layer(layer: number): number[] {
    return Array.from(this.totals[layer] ?? []);
  }

  snapshot(): ExpertLoadSnapshot {
    return { steps: [...this.steps], tokens: this.totals.map((row) => Array.from(row ?? [])) };
  }

  /** max / mean tokens per expert of a layer (1 = perfectly balanced); 0 before any token. */
  imbalance(layer: number): number {
    const row = this.totals[layer];
    if (!row || row.length === 0) return 0;
    let max = 0;
    let sum = 0;
    for (const value of row) {
      max = Math.max(max, value);
      sum += value;
    }
    return sum === 0 ? 0 : max / (sum / row.length);
  }

  reset(): void {
    this.totals.forEach((row) => row?.fill(0));
    this.steps.fill(0);
  }
}
