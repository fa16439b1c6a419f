/** What the deployment serves: prompt and output lengths and how requests arrive. */
export type Arrival =
  /** C clients, each sending its next request when the last one ends. */
  | { readonly kind: 'closed'; readonly concurrency: number }
  /** Poisson arrivals at `qps` requests per second. */
  | { readonly kind: 'poisson'; readonly qps: number }
  /** Offline: as many sequences at once as fit (and the runtime allows). */
  | { readonly kind: 'max' };

export interface Workload {
  readonly inputLength: number;
  readonly outputLength: number;
  readonly arrival: Arrival;
  /**
   * All requests start together and run as one batch to the end (a static
   * batch: `tessera bench serve --rounds 1`, TensorRT-LLM's session
   * benchmark, vLLM's latency benchmark). Closed-loop arrivals only.
   */
  readonly burst: boolean;
}
