/**
 * The router as an EngineHost: each sequence goes to a replica chosen by
 * the routing policy, and the router keeps what it needs to move it — the
 * request (seed fixed) and every id delivered so far. When the replica
 * fails (a retryable ReplicaFailure: its stream broke, it hung, it drained,
 * its mesh lost a rank) the sequence is sent again, in the resume form, to
 * another replica, which continues with exactly the tokens the first would
 * have produced; the listener (the client's ChoiceRun) sees one unbroken
 * sequence. Past --max-migrations it fails with a retryable 503.
 */
import { TesseraError } from '../core/errors.js';
import type { StepStats } from '../engine/engine-core.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { EMPTY_STATS, newSequenceId, type EngineHost, type EngineLimits, type HostHealth, type SequenceId, type SequenceListener, type SequenceUpdate } from '../serve/engine-host.js';
import { isReplicaFailure, type FailureReason } from '../serve/replica-failure.js';
import { PrefixIndex, prefixHashes } from './prefix-index.js';
import type { ReplicaId } from './replica-state.js';
import type { ReplicaSet } from './replica-set.js';
import type { RemoteEngineHost } from '../serve/remote-engine-host.js';
import { DEFAULT_BALANCE, route, type BalanceGate, type Candidate, type RoutingPolicy } from './routing-policy.js';
import { DisaggregatedAttempt, type PairMember } from './pd-attempt.js';
import type { PdMetrics } from './pd-metrics.js';
import { decodes, prefills, routePair } from './pd-policy.js';
import type { RouterMetrics } from './router-metrics.js';

export interface RoutingOptions {
  policy: RoutingPolicy;
  /** Times one sequence may move after its output has started. */
  maxMigrations: number;
  /** How long a sequence waits for a routable replica before a 503. */
  waitForReplicaMs: number;
  gate?: BalanceGate;
  /** Disaggregated prefill and decode: each sequence's prompt on a prefill replica, its KV moved to a decode replica that continues it (pd-policy.ts). */
  pd?: PdMetrics;
  /** Under pd: a sequence with at most this many tokens to prefill runs whole on a decode replica (0 or absent: none). */
  pdLocalPrefillTokens?: number;
  log: (line: string) => void;
}

/** Sends before any output that failed (busy, draining, refused): bounded, so a request nobody can take ends. */
const MAX_REROUTES = 16;
const RETRY_MS = 50;
/** Summed over replicas; batch sizes are not (the router runs no steps, and its metrics would count the replicas' last steps again and again). */
const SUMMED_STATS = ['waiting', 'running', 'blocksUsed', 'blocksFree', 'prefixQueriedTokens', 'prefixHitTokens', 'preemptions'] as const;
/** Failures that say the replica itself is broken, not merely busy or leaving. */
const BREAKING: ReadonlySet<FailureReason> = new Set(['refused', 'broken', 'hang', 'rank_lost', 'unavailable', 'kv_transfer']);

interface Attempt {
  /** Where the sequence runs (under --pd: its decode replica). */
  replica: ReplicaId;
  sequence: SequenceId;
  trial: boolean;
  outputs: number;
  /** Under --pd: the attempt on a prefill/decode pair. */
  pair?: DisaggregatedAttempt;
}

interface Routed {
  request: SequenceRequest;
  listener: SequenceListener;
  /** Generated ids the client has: the resume form of the next attempt. */
  delivered: number[];
  /** The first answer's cache hit, kept across moves (usage reports the first replica's). */
  cachedPromptTokens: number | undefined;
  migrations: number;
  reroutes: number;
  attempt: Attempt | undefined;
  /** Sent at least once (the router's prefix prediction counts only the first send). */
  sent: boolean;
  waitingSince: number | undefined;
}

export class RoutedEngineHost implements EngineHost {
  private readonly sequences = new Map<SequenceId, Routed>();
  private readonly index: PrefixIndex;
  private readonly statsListeners: ((stats: StepStats) => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private turn = 0;

  constructor(
    private readonly replicas: ReplicaSet,
    readonly limits: EngineLimits,
    private readonly options: RoutingOptions,
    private readonly metrics: RouterMetrics,
  ) {
    // Room for every replica's whole cache twice over: the index forgets later than the replicas do.
    this.index = new PrefixIndex(2 * replicas.size * limits.numBlocks);
    replicas.onDown((id) => this.index.forget(id));
    this.timer = setInterval(() => {
      this.emitStats();
      if (options.pd) this.recordPools(options.pd);
    }, 500);
    this.timer.unref();
  }

  submit(request: SequenceRequest, listener: SequenceListener): SequenceId {
    const id = newSequenceId();
    const routed: Routed = { request, listener, delivered: [...(request.resumeIds ?? [])], cachedPromptTokens: undefined, migrations: 0, reroutes: 0, attempt: undefined, sent: false, waitingSince: undefined };
    this.sequences.set(id, routed);
    this.metrics.promptTokens.inc(request.promptIds.length);
    // Never call the listener from inside submit.
    queueMicrotask(() => this.dispatch(id));
    return id;
  }

  cancel(id: SequenceId): void {
    const routed = this.sequences.get(id);
    if (!routed) return;
    this.sequences.delete(id);
    this.endAttempt(routed, true);
  }

  get activeSequences(): number {
    return this.sequences.size;
  }

  /** The replicas' latest stats, summed. */
  stats(): StepStats {
    const sum: StepStats = { ...EMPTY_STATS };
    for (const host of this.replicas.hosts()) {
      const stats = host.stats();
      for (const key of SUMMED_STATS) sum[key] += stats[key];
    }
    return sum;
  }

  onStats(listener: (stats: StepStats) => void): void {
    this.statsListeners.push(listener);
  }

  /** Ready while some replica is; new requests wait for a routable one (up to waitForReplicaMs) rather than fail at once. */
  health(): HostHealth {
    if (this.replicas.hosts().some((host) => host.health().ready)) return { ready: true, status: 'ready' };
    const statuses = this.replicas.statuses().map(({ url, status }) => `${url} ${status}`).join(', ');
    return { ready: false, status: `no replica is up (${statuses})`, code: 'TESSERA_ERR_REPLICA_UNAVAILABLE' };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const id of [...this.sequences.keys()]) this.cancel(id);
    await this.replicas.close();
  }

  private dispatch(id: SequenceId): void {
    const routed = this.sequences.get(id);
    if (!routed) return;
    const started = performance.now();
    const tokens = [...routed.request.promptIds, ...routed.delivered];
    const hashes = prefixHashes(tokens, this.limits.blockSize);
    const candidates = this.replicas.routable().map((replica) => ({ replica, matchedBlocks: this.index.matchedBlocks(replica.id, hashes) }));
    if (this.options.pd) return this.dispatchPd(id, routed, tokens.length, hashes, candidates, started, this.options.pd);
    const decision = route(candidates, this.options.policy, this.turn++, this.options.gate ?? DEFAULT_BALANCE);
    this.metrics.decisionSeconds.observe((performance.now() - started) / 1000);
    const host = decision && this.replicas.host(decision.replica);
    if (!decision || !host) return this.waitForReplica(id, routed);
    this.index.record(decision.replica, hashes);
    this.metrics.routed.inc({ replica: host.url, reason: decision.reason });
    if (!routed.sent) this.metrics.predictedHitTokens.inc(predictedHit(decision.matchedBlocks, this.limits.blockSize, routed.request.promptIds.length));
    routed.sent = true;
    this.send(id, routed, decision.replica, host);
  }

  /** --pd: a prefill/decode pair for the sequence, or (a pool is empty) one replica for all of it. */
  private dispatchPd(id: SequenceId, routed: Routed, tokens: number, hashes: string[], candidates: Candidate[], started: number, pd: PdMetrics): void {
    const local = { tokens, maxTokens: this.options.pdLocalPrefillTokens ?? 0 };
    const decision = routePair(candidates, Math.ceil((tokens + 1) / this.limits.blockSize), this.turn++, this.options.gate ?? DEFAULT_BALANCE, local);
    this.metrics.decisionSeconds.observe((performance.now() - started) / 1000);
    const [first, second] = decision?.kind === 'disaggregated' ? [decision.prefill, decision.decode] : [decision?.replica, undefined];
    const host = first !== undefined ? this.replicas.host(first) : undefined;
    const decodeHost = second !== undefined ? this.replicas.host(second) : undefined;
    if (!decision || !host || (second !== undefined && !decodeHost)) return this.waitForReplica(id, routed);
    if (!routed.sent) this.metrics.predictedHitTokens.inc(predictedHit(decision.matchedBlocks, this.limits.blockSize, routed.request.promptIds.length));
    routed.sent = true;
    this.index.record(first!, hashes);
    if (decision.kind === 'colocated') {
      pd.sequences.inc({ path: 'colocated' });
      this.metrics.routed.inc({ replica: host.url, reason: decision.reason });
      return this.send(id, routed, decision.replica, host);
    }
    // The decode replica will hold the prompt's blocks too, once they have moved.
    this.index.record(decision.decode, hashes);
    pd.sequences.inc({ path: 'disaggregated' });
    this.metrics.routed.inc({ replica: host.url, reason: 'prefill' });
    this.metrics.routed.inc({ replica: decodeHost!.url, reason: 'decode' });
    this.sendPair(id, routed, { id: decision.prefill, host }, { id: decision.decode, host: decodeHost! }, pd);
  }

  /** One attempt on a pair: the decode replica carries it (its outputs, its breaker), the prefill replica's part ends at the handoff. */
  private sendPair(id: SequenceId, routed: Routed, prefill: PairMember, decode: PairMember, pd: PdMetrics): void {
    const trials = new Map([prefill.id, decode.id].map((replica) => [replica, this.replicas.state(replica).breaker === 'half-open'] as const));
    for (const [replica, trial] of trials) this.replicas.apply(replica, { type: 'SequenceRouted', trial });
    const attempt: Attempt = { replica: decode.id, sequence: '' as SequenceId, trial: trials.get(decode.id)!, outputs: 0 };
    routed.attempt = attempt;
    let prefillAnswered = false;
    attempt.pair = new DisaggregatedAttempt(prefill, decode, this.resumed(routed), {
      onOutput: (output) => this.deliver(id, attempt, output),
      onError: (error, culprit) => this.failed(id, attempt, error, culprit),
      onAnswered: (replica) => {
        if (replica === prefill.id) prefillAnswered = true;
        this.replicas.apply(replica, { type: 'SequenceAnswered', trial: trials.get(replica)! });
      },
      onPhases: (phases) => pd.observe(phases),
      onPrefillDone: () => this.replicas.apply(prefill.id, { type: 'SequenceEnded', trial: trials.get(prefill.id)! && !prefillAnswered }),
    });
    try {
      attempt.pair.start();
    } catch (error) {
      this.endAttempt(routed, true);
      this.finishWithError(id, new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `could not send to ${decode.host.url}: ${(error as Error).message}`));
    }
  }

  /** The request as the next attempt sends it: in the resume form when ids were delivered. */
  private resumed(routed: Routed): SequenceRequest {
    return { ...routed.request, resumeIds: routed.delivered.length > 0 ? [...routed.delivered] : undefined };
  }

  /** One attempt: the sequence in the resume form (when ids were delivered) to `replica`. */
  private send(id: SequenceId, routed: Routed, replica: ReplicaId, host: RemoteEngineHost): void {
    const trial = this.replicas.state(replica).breaker === 'half-open';
    this.replicas.apply(replica, { type: 'SequenceRouted', trial });
    const attempt: Attempt = { replica, sequence: '' as SequenceId, trial, outputs: 0 };
    routed.attempt = attempt;
    try {
      attempt.sequence = host.submit(this.resumed(routed), {
        onOutput: (output) => this.deliver(id, attempt, output),
        onError: (error) => this.failed(id, attempt, error),
      });
    } catch (error) {
      // The host is closing (the router is shutting down): nothing more can be sent.
      this.endAttempt(routed, false);
      this.finishWithError(id, new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `could not send to ${host.url}: ${(error as Error).message}`));
    }
  }

  private waitForReplica(id: SequenceId, routed: Routed): void {
    routed.waitingSince ??= performance.now();
    if (performance.now() - routed.waitingSince > this.options.waitForReplicaMs) {
      const statuses = this.replicas.statuses().map(({ url, status }) => `${url} ${status}`).join(', ');
      return this.finishWithError(id, new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `no replica could take the request for ${Math.round(this.options.waitForReplicaMs)} ms (${statuses}); retry later`));
    }
    setTimeout(() => this.dispatch(id), RETRY_MS);
  }

  private deliver(id: SequenceId, attempt: Attempt, output: SequenceUpdate): void {
    const routed = this.sequences.get(id);
    if (!routed || routed.attempt !== attempt) return;
    if (attempt.outputs++ === 0) {
      routed.waitingSince = undefined;
      this.replicas.apply(attempt.replica, { type: 'SequenceAnswered', trial: attempt.trial });
      if (routed.cachedPromptTokens === undefined) this.metrics.reportedHitTokens.inc(output.cachedPromptTokens);
    }
    routed.delivered.push(...output.ids);
    routed.cachedPromptTokens ??= output.cachedPromptTokens;
    if (output.finish) {
      this.sequences.delete(id);
      this.endAttempt(routed, false);
    }
    routed.listener.onOutput({ ...output, cachedPromptTokens: routed.cachedPromptTokens });
  }

  /** `culprit`: the replica to blame (under --pd, the pair says which; else the attempt's). */
  private failed(id: SequenceId, attempt: Attempt, error: TesseraError, culprit = attempt.replica): void {
    const routed = this.sequences.get(id);
    if (!routed || routed.attempt !== attempt) return;
    this.endAttempt(routed, false);
    if (!isReplicaFailure(error)) return this.finishWithError(id, error);
    if (BREAKING.has(error.reason)) this.replicas.apply(culprit, { type: 'ReplicaFailed', why: error.message, at: performance.now() });
    const url = this.replicas.state(culprit).url;
    if (error.reason === 'busy' && attempt.outputs === 0) {
      // Full, not failing: wait for room (anywhere) as for a replica that is not up, up to waitForReplicaMs.
      this.metrics.reroutes.inc({ cause: error.reason });
      return this.waitForReplica(id, routed);
    }
    if (attempt.outputs > 0) {
      routed.migrations++;
      this.metrics.migrations.inc({ cause: error.reason });
      this.options.log(`moving a sequence off ${url} after ${routed.delivered.length} tokens (${error.reason}: ${error.message})`);
      if (routed.migrations > this.options.maxMigrations) {
        return this.finishWithError(id, new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `the request moved between replicas ${this.options.maxMigrations} times (--max-migrations) and failed again (${error.message}); retry later`));
      }
    } else {
      routed.reroutes++;
      this.metrics.reroutes.inc({ cause: error.reason });
      if (routed.reroutes > MAX_REROUTES) return this.finishWithError(id, new TesseraError('TESSERA_ERR_REPLICA_UNAVAILABLE', `no replica took the request after ${MAX_REROUTES} tries (last: ${error.message}); retry later`));
    }
    setImmediate(() => this.dispatch(id));
  }

  private endAttempt(routed: Routed, cancel: boolean): void {
    const attempt = routed.attempt;
    if (!attempt) return;
    routed.attempt = undefined;
    if (cancel && attempt.pair) attempt.pair.cancel();
    else if (cancel) this.replicas.host(attempt.replica)?.cancel(attempt.sequence);
    this.replicas.apply(attempt.replica, { type: 'SequenceEnded', trial: attempt.trial && attempt.outputs === 0 });
  }

  private finishWithError(id: SequenceId, error: TesseraError): void {
    const routed = this.sequences.get(id);
    if (!routed) return;
    this.sequences.delete(id);
    routed.listener.onError(error);
  }

  /** --pd: the waiting sequences of each pool, from the replicas' last reports. */
  private recordPools(pd: PdMetrics): void {
    const depth = { prefill: 0, decode: 0 };
    for (let index = 0; index < this.replicas.size; index++) {
      const id = index as ReplicaId;
      const waiting = this.replicas.host(id)?.stats().waiting ?? 0;
      const state = this.replicas.state(id);
      if (prefills(state)) depth.prefill += waiting;
      if (decodes(state)) depth.decode += waiting;
    }
    pd.queueDepth.set({ pool: 'prefill' }, depth.prefill);
    pd.queueDepth.set({ pool: 'decode' }, depth.decode);
  }

  private emitStats(): void {
    if (this.statsListeners.length === 0) return;
    const stats = this.stats();
    for (const listener of this.statsListeners) listener(stats);
  }
}

/** Prompt tokens a replica holding `matchedBlocks` leading blocks serves from its cache (it always recomputes the last token). */
function predictedHit(matchedBlocks: number, blockSize: number, promptLength: number): number {
  return Math.min(matchedBlocks * blockSize, Math.floor((promptLength - 1) / blockSize) * blockSize);
}
