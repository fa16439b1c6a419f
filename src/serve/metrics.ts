/**
 * Prometheus series of the server (prom-client, one registry per server so
 * several servers in one process — tests — do not collide). Engine gauges
 * come from the step statistics the engine worker sends after every step.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StepStats } from '../engine/engine-core.js';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const TOKEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'tessera_requests_total', help: 'HTTP requests by endpoint and status code', labelNames: ['endpoint', 'status'], registers: [this.registry] });
  readonly cancelled = new Counter({ name: 'tessera_requests_cancelled_total', help: 'Requests whose client went away before the end (their sequences were stopped and their blocks freed)', registers: [this.registry] });
  readonly promptTokens = new Counter({ name: 'tessera_prompt_tokens_total', help: 'Prompt tokens of accepted requests', registers: [this.registry] });
  readonly generationTokens = new Counter({ name: 'tessera_generation_tokens_total', help: 'Generated tokens', registers: [this.registry] });
  readonly timeToFirstToken = new Histogram({ name: 'tessera_time_to_first_token_seconds', help: 'Arrival to first generated token, per choice', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly timePerOutputToken = new Histogram({ name: 'tessera_time_per_output_token_seconds', help: 'Mean time between generated tokens after the first, per choice', buckets: TOKEN_LATENCY_BUCKETS, registers: [this.registry] });
  readonly endToEnd = new Histogram({ name: 'tessera_e2e_request_latency_seconds', help: 'Arrival to last token, per request', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'tessera_queue_depth', help: 'Sequences waiting for admission', registers: [this.registry] });
  readonly running = new Gauge({ name: 'tessera_running_sequences', help: 'Sequences in the running batch', registers: [this.registry] });
  readonly blocksUsed = new Gauge({ name: 'tessera_kv_blocks_used', help: 'KV blocks held by sequences', registers: [this.registry] });
  readonly blocksFree = new Gauge({ name: 'tessera_kv_blocks_free', help: 'KV blocks free (including cached prefixes nobody holds)', registers: [this.registry] });
  readonly prefixHitRate = new Gauge({ name: 'tessera_prefix_cache_hit_rate', help: 'Prompt tokens served from the prefix cache / prompt tokens looked up', registers: [this.registry] });
  readonly prefixQueried = new Gauge({ name: 'tessera_prefix_cache_queried_tokens', help: 'Prompt tokens looked up in the prefix cache (cumulative)', registers: [this.registry] });
  readonly prefixHits = new Gauge({ name: 'tessera_prefix_cache_hit_tokens', help: 'Prompt tokens found in the prefix cache (cumulative)', registers: [this.registry] });
  readonly preemptions = new Gauge({ name: 'tessera_preemptions', help: 'Sequences preempted for lack of KV blocks (cumulative)', registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'tessera_batch_size', help: 'Sequences per engine step', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [this.registry] });
  readonly batchTokens = new Histogram({ name: 'tessera_batch_tokens', help: 'Tokens per engine step', buckets: [1, 4, 16, 64, 256, 1024, 4096], registers: [this.registry] });
  readonly expertTokens = new Gauge({ name: 'tessera_expert_routed_tokens', help: 'Tokens routed to each expert of each MoE layer (cumulative)', labelNames: ['layer', 'expert'], registers: [this.registry] });
  readonly expertImbalance = new Gauge({ name: 'tessera_expert_load_imbalance', help: 'Per MoE layer: tokens of its busiest expert / mean tokens per expert (1 = balanced)', labelNames: ['layer'], registers: [this.registry] });

  /** Folds one engine step's statistics into the gauges. */
  recordStep(stats: StepStats): void {
    this.queueDepth.set(stats.waiting);
    this.running.set(stats.running);
    this.blocksUsed.set(stats.blocksUsed);
    this.blocksFree.set(stats.blocksFree);
    this.prefixQueried.set(stats.prefixQueriedTokens);
    this.prefixHits.set(stats.prefixHitTokens);
    this.prefixHitRate.set(stats.prefixQueriedTokens === 0 ? 0 : stats.prefixHitTokens / stats.prefixQueriedTokens);
    this.preemptions.set(stats.preemptions);
    if (stats.expertTokens) this.recordExperts(stats.expertTokens);
    if (stats.batchSequences > 0) {
      this.batchSize.observe(stats.batchSequences);
      this.batchTokens.observe(stats.batchTokens);
    }
  }

  /** [numLayers][numExperts] cumulative routed tokens → per-expert gauges and per-layer imbalance. */
  private recordExperts(tokens: number[][]): void {
    tokens.forEach((row, layer) => {
      if (row.length === 0) return;
      row.forEach((count, expert) => this.expertTokens.set({ layer: String(layer), expert: String(expert) }, count));
      const total = row.reduce((a, b) => a + b, 0);
      this.expertImbalance.set({ layer: String(layer) }, total === 0 ? 0 : Math.max(...row) / (total / row.length));
    });
  }
}
