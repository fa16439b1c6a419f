/**
 * The router's own Prometheus series, beside the serving ones (requests,
 * TTFT, ...) in the same registry: where sequences went, how often they
 * moved and why, replica health changes, how well the router predicted the
 * replicas' prefix-cache hits, and how long a routing decision takes.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

export class RouterMetrics {
  readonly routed: Counter<'replica' | 'reason'>;
  readonly migrations: Counter<'cause'>;
  readonly reroutes: Counter<'cause'>;
  readonly transitions: Counter<'replica' | 'to'>;
  readonly restarts: Counter<'replica'>;
  readonly promptTokens: Counter;
  readonly predictedHitTokens: Counter;
  readonly reportedHitTokens: Counter;
  readonly decisionSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.routed = new Counter({ name: 'tessera_router_sequences_total', help: 'Sequences sent to each replica (a migrated sequence counts again where it goes), by why that replica', labelNames: ['replica', 'reason'], registers });
    this.migrations = new Counter({ name: 'tessera_router_migrations_total', help: 'Sequences resumed on another replica after output had started, by what went wrong (broken, hang, draining, rank_lost, refused, unavailable)', labelNames: ['cause'], registers });
    this.reroutes = new Counter({ name: 'tessera_router_reroutes_total', help: 'Sequences sent elsewhere before any output (busy, draining, refused, ...)', labelNames: ['cause'], registers });
    this.transitions = new Counter({ name: 'tessera_router_replica_transitions_total', help: 'Replica health changes, by the state entered (up, down, half-open, draining)', labelNames: ['replica', 'to'], registers });
    this.restarts = new Counter({ name: 'tessera_router_replica_restarts_total', help: 'Times a replica answered as a new process (its load report named a new instance), down or not in between', labelNames: ['replica'], registers });
    this.promptTokens = new Counter({ name: 'tessera_router_prompt_tokens_total', help: 'Prompt tokens of routed sequences (first attempts)', registers });
    this.predictedHitTokens = new Counter({ name: 'tessera_router_prefix_predicted_tokens_total', help: 'Prompt tokens the router expected to find in the chosen replica\'s prefix cache', registers });
    this.reportedHitTokens = new Counter({ name: 'tessera_router_prefix_reported_tokens_total', help: 'Prompt tokens the replicas reported found in their prefix caches (cached_tokens)', registers });
    this.decisionSeconds = new Histogram({ name: 'tessera_router_decision_seconds', help: 'Time to choose a replica for a sequence (hashing the prompt and scoring replicas)', buckets: [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], registers });
  }
}
