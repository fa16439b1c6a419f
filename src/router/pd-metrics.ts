/**
 * The router's series for disaggregated prefill and decode (`--pd`): where
 * sequences ran (a prefill/decode pair, or whole on one replica), each
 * disaggregated sequence's time to its first decoded token split into
 * prefill, transfer and first decode, its KV bytes and wire time, and the
 * queue depths of the prefill and decode pools.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PdPhases } from './pd-attempt.js';

const PHASE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class PdMetrics {
  readonly sequences: Counter<'path'>;
  readonly phaseSeconds: Histogram<'phase'>;
  readonly transferBytes: Histogram;
  readonly transferWireSeconds: Histogram;
  readonly queueDepth: Gauge<'pool'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.sequences = new Counter({ name: 'tessera_pd_sequences_total', help: 'Sequences sent to a prefill/decode pair (disaggregated) or whole to one replica (colocated: a pool was empty)', labelNames: ['path'], registers });
    this.phaseSeconds = new Histogram({ name: 'tessera_pd_ttft_seconds', help: 'Per disaggregated sequence: prefill (sent → first token), transfer (first token → decode replica holds every row), first_decode (→ its first output)', labelNames: ['phase'], buckets: PHASE_BUCKETS, registers });
    this.transferBytes = new Histogram({ name: 'tessera_pd_transfer_bytes', help: 'KV bytes moved per disaggregated sequence', buckets: [1e4, 1e5, 1e6, 4e6, 1.6e7, 6.4e7, 2.56e8, 1e9], registers });
    this.transferWireSeconds = new Histogram({ name: 'tessera_pd_transfer_wire_seconds', help: 'Per disaggregated sequence: time its KV rows were on the wire', buckets: [1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1], registers });
    this.queueDepth = new Gauge({ name: 'tessera_pd_queue_depth', help: 'Sequences waiting for admission, summed over the replicas of each pool (prefill, decode; a role-both replica counts in both)', labelNames: ['pool'], registers });
  }

  observe(phases: PdPhases): void {
    this.phaseSeconds.observe({ phase: 'prefill' }, phases.prefillMs / 1000);
    this.phaseSeconds.observe({ phase: 'transfer' }, phases.transferMs / 1000);
    this.phaseSeconds.observe({ phase: 'first_decode' }, phases.firstDecodeMs / 1000);
    this.transferBytes.observe(phases.bytes);
    this.transferWireSeconds.observe(phases.wireMs / 1000);
  }
}
