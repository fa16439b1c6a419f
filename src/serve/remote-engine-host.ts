/**
 * A replica (any `tessera serve`, one process or a mesh, here or on another
 * machine) as an EngineHost, over its replica API (replica-protocol.ts). It
 * polls the replica's load every `pollMs`; a replica that has not answered
 * for `timeoutMs` — hung, SIGSTOPped, cut off — is unhealthy, and its
 * sequences in flight fail with a retryable ReplicaFailure ('hang'), as do
 * streams that break or end without their last output ('broken'), so
 * whoever submitted them (a router) can resume them elsewhere.
 */
import { TesseraError } from '../core/errors.js';
import type { StepStats } from '../engine/engine-core.js';
import type { SequenceRequest } from '../engine/sequence.js';
import { EMPTY_STATS, newSequenceId, type EngineHost, type EngineLimits, type HostHealth, type SequenceId, type SequenceListener } from './engine-host.js';
import { NdjsonLines } from './ndjson-lines.js';
import { connectionFailure, replicaError, replicaStatusError } from './replica-failure.js';
import { REPLICA_LOAD_PATH, REPLICA_SEQUENCES_PATH, type ReplicaEvent, type ReplicaLoad } from './replica-protocol.js';
import { getText, postStream, readText } from './replica-stream.js';
import { parseReplicaJson, replicaEventSchema, replicaLoadSchema } from './replica-schema.js';
import { isKvEvent, type KvPart, type KvReplicaEvent } from './pd-protocol.js';

export interface RemoteHostOptions {
  /** The replica's --api-key (never a client's key). */
  apiKey?: string;
  /** Load polls, ms apart (default 250). */
  pollMs?: number;
  /** No answer for this long: the replica is out (default 2000). */
  timeoutMs?: number;
}

/** A sequence's part in a KV transfer, and who hears its transfer events (disaggregated prefill and decode). */
export interface KvSubmit {
  kv: KvPart;
  onEvent(event: KvReplicaEvent): void;
}

interface Stream {
  listener: SequenceListener;
  kv?: KvSubmit;
  controller: AbortController;
  /** Set when this host ends the stream itself (cancel, or the replica hung). */
  hung: boolean;
}

export const DEFAULT_POLL_MS = 250;
export const DEFAULT_HEALTH_TIMEOUT_MS = 2000;

export class RemoteEngineHost implements EngineHost {
  readonly limits: EngineLimits;
  private readonly streams = new Map<SequenceId, Stream>();
  private readonly statsListeners: ((stats: StepStats) => void)[] = [];
  private readonly healthListeners: ((health: HostHealth) => void)[] = [];
  private readonly restartListeners: (() => void)[] = [];
  private lastLoad: ReplicaLoad;
  private lastAnswer = performance.now();
  private lastProblem = '';
  private lastHealth: HostHealth = { ready: true, status: 'ready' };
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private polling = false;

  private constructor(
    readonly url: string,
    load: ReplicaLoad,
    private readonly options: Required<RemoteHostOptions>,
  ) {
    this.lastLoad = load;
    this.limits = load.limits;
    this.lastHealth = this.health();
    this.timer = setInterval(() => this.tick(), options.pollMs);
    this.timer.unref();
  }

  /** Connects to a replica: its first load report gives the limits and model. */
  static async connect(url: string, options: RemoteHostOptions = {}): Promise<RemoteEngineHost> {
    const full = { apiKey: options.apiKey ?? '', pollMs: options.pollMs ?? DEFAULT_POLL_MS, timeoutMs: options.timeoutMs ?? DEFAULT_HEALTH_TIMEOUT_MS };
    const load = await fetchLoad(url, full);
    return new RemoteEngineHost(url.replace(/\/+$/, ''), load, full);
  }

  /** The replica's latest load report. */
  get load(): ReplicaLoad {
    return this.lastLoad;
  }

  /** Milliseconds since the replica last answered a poll. */
  get silentMs(): number {
    return performance.now() - this.lastAnswer;
  }

  submit(request: SequenceRequest, listener: SequenceListener, kv?: KvSubmit): SequenceId {
    if (this.closed) throw new TesseraError('TESSERA_ERR_INTERNAL', `the host of replica ${this.url} is closed`);
    const id = newSequenceId();
    const stream: Stream = { listener, kv, controller: new AbortController(), hung: false };
    this.streams.set(id, stream);
    void this.run(id, stream, request);
    return id;
  }

  cancel(sequenceId: SequenceId): void {
    const stream = this.streams.get(sequenceId);
    if (!stream) return;
    this.streams.delete(sequenceId);
    stream.controller.abort();
  }

  get activeSequences(): number {
    return this.streams.size;
  }

  stats(): StepStats {
    return { ...EMPTY_STATS, ...this.lastLoad.stats };
  }

  onStats(listener: (stats: StepStats) => void): void {
    this.statsListeners.push(listener);
  }

  /** Called when the replica's load report names another instance than before: it was restarted (ReplicaLoad.instance). */
  onRestart(listener: () => void): void {
    this.restartListeners.push(listener);
  }

  /** Called whenever health() changes. */
  onHealth(listener: (health: HostHealth) => void): void {
    this.healthListeners.push(listener);
  }

  health(): HostHealth {
    if (this.closed) return { ready: false, status: 'closed', code: 'TESSERA_ERR_REPLICA_UNAVAILABLE' };
    if (this.silentMs > this.options.timeoutMs) return { ready: false, status: `unreachable for ${Math.round(this.silentMs)} ms (${this.lastProblem || 'no answer'})`, code: 'TESSERA_ERR_REPLICA_UNAVAILABLE' };
    const load = this.lastLoad;
    if (load.ready) return { ready: true, status: 'ready' };
    const code = load.code === 'TESSERA_ERR_DRAINING' || load.code === 'TESSERA_ERR_RANK_LOST' ? load.code : 'TESSERA_ERR_REPLICA_UNAVAILABLE';
    return { ready: false, status: load.status, code };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    for (const id of [...this.streams.keys()]) this.cancel(id);
  }

  private tick(): void {
    this.checkHealth();
    if (!this.polling) void this.poll();
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      const load = await fetchLoad(this.url, this.options);
      const restarted = load.instance !== undefined && this.lastLoad.instance !== undefined && load.instance !== this.lastLoad.instance;
      this.lastLoad = load;
      this.lastAnswer = performance.now();
      if (restarted) for (const listener of this.restartListeners) listener();
      this.lastProblem = '';
      for (const listener of this.statsListeners) listener(this.stats());
    } catch (error) {
      this.lastProblem = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    } finally {
      this.polling = false;
    }
    this.checkHealth();
  }

  /** Tells listeners about a change; a replica that went silent takes its streams down with it. */
  private checkHealth(): void {
    const health = this.health();
    if (health.status === this.lastHealth.status) return;
    this.lastHealth = health;
    if (!health.ready && this.silentMs > this.options.timeoutMs) {
      for (const stream of this.streams.values()) {
        stream.hung = true;
        stream.controller.abort();
      }
    }
    for (const listener of this.healthListeners) listener(health);
  }

  private async run(id: SequenceId, stream: Stream, request: SequenceRequest): Promise<void> {
    let finished = false;
    try {
      const body = JSON.stringify({ model: this.lastLoad.model, request, ...(stream.kv ? { kv: stream.kv.kv } : {}) });
      const response = await postStream(`${this.url}${REPLICA_SEQUENCES_PATH}`, this.headers(), body, stream.controller.signal);
      if (response.statusCode !== 200) {
        const { code, message } = errorFields(response.statusCode ?? 0, await readText(response));
        return this.fail(id, replicaStatusError(this.url, response.statusCode ?? 0, code, message));
      }
      const lines = new NdjsonLines();
      response.setEncoding('utf8');
      for await (const text of response) {
        for (const line of lines.push(text as string)) {
          finished = this.deliver(id, readEvent(line));
          if (finished) return;
        }
      }
      this.fail(id, connectionFailure(this.url, new Error('the stream ended before the sequence finished'), false));
    } catch (error) {
      if (!finished) this.fail(id, connectionFailure(this.url, error, stream.hung));
    }
  }

  /** Passes one event on; true when it was the sequence's last. */
  private deliver(id: SequenceId, event: ReplicaEvent): boolean {
    const stream = this.streams.get(id);
    if (!stream) return true;
    if (event.type === 'error') {
      this.fail(id, replicaError(this.url, event.code, event.message));
      return true;
    }
    if (isKvEvent(event)) {
      // A handoff ends a prefill replica's stream: the sequence goes on at its decode replica.
      if (event.type === 'handoff') this.streams.delete(id);
      stream.kv?.onEvent(event);
      return event.type === 'handoff';
    }
    const { type: _, ...output } = event;
    if (output.finish) this.streams.delete(id);
    stream.listener.onOutput(output);
    return output.finish !== undefined;
  }

  private fail(id: SequenceId, error: TesseraError): void {
    const stream = this.streams.get(id);
    if (!stream) return; // cancelled: nobody is listening
    this.streams.delete(id);
    stream.controller.abort();
    stream.listener.onError(error);
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}`, ...extra } : extra;
  }
}

async function fetchLoad(url: string, options: Required<RemoteHostOptions>): Promise<ReplicaLoad> {
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const { status, text } = await getText(`${url.replace(/\/+$/, '')}${REPLICA_LOAD_PATH}`, headers, options.timeoutMs);
  if (status !== 200) {
    const { code, message } = errorFields(status, text);
    throw replicaStatusError(url, status, code, message);
  }
  return parseReplicaJson(text, replicaLoadSchema, 'a replica load report');
}

/** The code and message of an OpenAI error body (or the raw text, when it is not one). */
function errorFields(status: number, text: string): { code: string | null; message: string } {
  try {
    const { error } = JSON.parse(text) as { error?: { code?: string | null; message?: string } };
    return { code: error?.code ?? null, message: error?.message ?? text };
  } catch {
    return { code: null, message: `HTTP ${status} ${text.slice(0, 200)}` };
  }
}

/** A replica's event line: sequence events through their schema; KV events (pd-protocol.ts) as their protocol reads them. */
function readEvent(line: string): ReplicaEvent | KvReplicaEvent {
  const value = parseReplicaJson(line, (json: unknown) => json, 'a replica event');
  if (typeof value === 'object' && value !== null && 'type' in value && typeof value.type === 'string' && isKvEvent({ type: value.type })) return value as KvReplicaEvent;
  return replicaEventSchema(value, 'a replica event');
}
