/**
 * A replica's part in disaggregated prefill and decode, between its HTTP
 * routes, its engine worker and its KV links:
 * - decode side (roles decode and both): a KvListener takes transfers;
 *   `reserve` holds blocks in the engine for a prompt's KV, `receive`
 *   passes each arriving frame's rows to the engine (the buffer moves to its
 *   thread, no copy), and the engine admits the sequence when all are in;
 * - prefill side (roles prefill and both): `send` opens a transfer over the
 *   best link to the decode replica; the engine's rows go out as each layer
 *   computes them, and its handoff (the first token's ids) closes it.
 * A transfer that breaks frees what it holds on both sides; the router
 * prefills the request again elsewhere.
 */
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import type { KvFromEngine, TransferId } from '../engine/kv-messages.js';
import type { KvEndpoint, KvTransportChoice } from '../disagg/kv-endpoint.js';
import { KvListener, type FrameCopy, type KvShape, type TransferStats } from '../disagg/kv-listener.js';
import { KvSender, type OutgoingTransfer, type ProbeResult, type SendStats } from '../disagg/kv-sender.js';
import { ApiError } from './api-error.js';
import { KvRingBridge } from './kv-ring-bridge.js';
import type { LocalEngineHost } from './local-engine-host.js';
import type { KvMetrics } from './kv-metrics.js';
import type { KvReplicaEvent, PdLoad, ReplicaRole } from './pd-protocol.js';

export interface PdReplicaOptions {
  role: ReplicaRole;
  /** Where the KV listener listens (decode and both roles), and the name it advertises for a wildcard address. */
  kvHost: string;
  kvPort: number;
  kvAdvertiseHost?: string;
  /** Which link kind this replica sends KV over (auto: the best both ends can use). */
  transport: KvTransportChoice;
  /** Whether prefill replicas on this host may write the rows straight into this replica's KV blocks (`--kv-direct`, default true). */
  direct?: boolean;
  /** A reserved transfer not complete after this long is given up (a backstop: the router cancels sooner). */
  transferTimeoutMs: number;
  metrics: KvMetrics;
}

interface Receiving {
  admitted: (event: Extract<KvReplicaEvent, { type: 'kv-received' }>) => void;
  stats: TransferStats | undefined;
  timer: NodeJS.Timeout;
}

interface Sending {
  outgoing: OutgoingTransfer;
  startedAt: number;
  firstRowAt: number | undefined;
  handoff: (event: Extract<KvReplicaEvent, { type: 'handoff' }>) => void;
  failed: (error: TesseraError) => void;
}

export class PdReplica {
  private readonly reservations = new Map<TransferId, (reply: Extract<KvFromEngine, { type: 'reserved' }>) => void>();
  private readonly receiving = new Map<TransferId, Receiving>();
  private readonly sending = new Map<TransferId, Sending>();
  private readonly sender: KvSender;

  private constructor(
    private readonly host: LocalEngineHost,
    private readonly shape: KvShape,
    private readonly listener: KvListener | undefined,
    private readonly options: PdReplicaOptions,
    private readonly bridge: KvRingBridge,
  ) {
    this.sender = new KvSender(options.transport, bridge);
    options.metrics.heldTransfers = () => bridge.heldCount;
    options.metrics.targetTransfers = () => bridge.targetCount;
    host.onKv((message) => this.fromEngine(message));
  }

  static async start(host: LocalEngineHost, config: ModelConfig, options: PdReplicaOptions): Promise<PdReplica> {
    const shape: KvShape = { numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: config.headDim, dtype: host.limits.kvCacheDtype };
    const listens = options.role !== 'prefill' && host.limits.kvTransfer === true;
    // The engine's thread copies rows through the links' shared-memory rings itself (kv-ring-bridge.ts).
    let listener: KvListener | undefined;
    const bridge = new KvRingBridge(host, (read) => listener?.ringRead(read), options.direct ?? true);
    const onCopy = (copy: FrameCopy): void => options.metrics.frameCopySeconds.observe({ copy: copy.copy }, copy.ms / 1000);
    listener = listens ? await KvListener.start({ host: options.kvHost, port: options.kvPort, advertiseHost: options.kvAdvertiseHost, shape, keeper: bridge, onCopy }) : undefined;
    return new PdReplica(host, shape, listener, options, bridge);
  }

  get load(): PdLoad {
    return { role: this.options.role, kvTransfer: this.host.limits.kvTransfer === true, endpoints: this.listener?.endpoints ?? [] };
  }

  get endpoints(): KvEndpoint[] {
    return this.listener?.endpoints ?? [];
  }

  /** Decode side: blocks for the KV of `tokens`; resolves with the positions already cached here. 429 when the cache has no room. */
  async reserve(transfer: TransferId, tokens: number[]): Promise<number> {
    if (!this.listener) throw new ApiError(400, `this replica (role ${this.options.role}${this.host.limits.kvTransfer ? '' : ', no KV transfer'}) does not take KV transfers; send it whole sequences`, 'invalid_request_error', 'kv', 'kv_transfer_unsupported');
    const reply = await new Promise<Extract<KvFromEngine, { type: 'reserved' }>>((resolve) => {
      this.reservations.set(transfer, resolve);
      this.host.sendKv({ type: 'reserve', transfer, tokens });
    });
    this.reservations.delete(transfer);
    if (reply.blocks < 0) throw new ApiError(429, `the KV cache has no room for ${tokens.length} more tokens now; retry shortly or on another replica`, 'rate_limit_exceeded', null, 'server_busy');
    return reply.skipPositions;
  }

  /** Decode side: takes the transfer's frames; `admitted` hears when the engine has admitted the sequence. */
  receive(transfer: TransferId, admitted: Receiving['admitted']): void {
    const listener = this.listener!;
    const timer = setTimeout(() => this.host.sendKv({ type: 'abort', transfer, message: `the transfer did not complete within ${this.options.transferTimeoutMs} ms` }), this.options.transferTimeoutMs);
    const entry: Receiving = { admitted, stats: undefined, timer };
    this.receiving.set(transfer, entry);
    this.options.metrics.inFlight.inc({ direction: 'received' });
    listener.expect(transfer, {
      rows: (rows) => this.host.sendKv({ type: 'rows', ...rows }),
      ringRows: (rows, slot) => this.host.sendKv({ type: 'ring-rows', rows, slot }),
      directRows: (rows) => this.host.sendKv({ type: 'direct-rows', rows }),
      commit: (ids, stats) => {
        entry.stats = stats;
        this.host.sendKv({ type: 'commit', transfer, ids });
      },
      abort: (message) => this.host.sendKv({ type: 'abort', transfer, message }),
    });
  }

  /** Decode side: the route is done with the transfer (admitted, failed or cancelled). */
  endReceive(transfer: TransferId): void {
    this.listener?.forget(transfer);
    const entry = this.receiving.get(transfer);
    // A no-op once the sequence holds the blocks (admitted) or its cancellation freed them.
    this.host.sendKv({ type: 'release', transfer });
    if (!entry) return;
    clearTimeout(entry.timer);
    this.receiving.delete(transfer);
    this.options.metrics.inFlight.dec({ direction: 'received' });
    if (!entry.stats) this.options.metrics.transfers.inc({ direction: 'received', result: 'failed' });
  }

  /** Prefill side: opens the transfer before the sequence is submitted, so its first rows have somewhere to go. */
  send(transfer: TransferId, endpoints: readonly KvEndpoint[], handoff: Sending['handoff'], failed: Sending['failed']): void {
    const outgoing = this.sender.start(transfer, endpoints, this.shape);
    const entry: Sending = { outgoing, startedAt: performance.now(), firstRowAt: undefined, handoff, failed };
    this.sending.set(transfer, entry);
    this.options.metrics.inFlight.inc({ direction: 'sent' });
    outgoing.onLost((error) => this.endSend(transfer, error instanceof TesseraError ? error : new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', error.message)));
  }

  /** Prefill side: the kept shared-memory ring of the link to `endpoints` (set up if need be), for the engine to write the rows into; undefined: by message. */
  ringFor(endpoints: readonly KvEndpoint[]): Promise<string | undefined> {
    return this.sender.ringFor(endpoints);
  }

  /** Prefill side: the transfer is over (handed off, finished at its first token, failed or cancelled). */
  endSend(transfer: TransferId, error?: TesseraError): void {
    const entry = this.sending.get(transfer);
    if (!entry) return;
    this.sending.delete(transfer);
    this.options.metrics.inFlight.dec({ direction: 'sent' });
    if (error) {
      this.options.metrics.transfers.inc({ direction: 'sent', result: 'failed' });
      entry.outgoing.abort(error.message);
      entry.failed(error);
    }
  }

  /**
   * Prefill side: the bandwidth of the link a transfer to `endpoints` takes
   * (the pooled one, dialed if need be), timed as transfers are timed, so a
   * transfer's rate can be set against what the link carries.
   */
  probe(endpoints: readonly KvEndpoint[], frames: number, frameBytes: number): Promise<ProbeResult> {
    if (this.options.role === 'decode' || this.host.limits.kvTransfer !== true) throw new ApiError(400, `this replica (role ${this.options.role}) does not send KV; probe from a prefill replica`, 'invalid_request_error', 'endpoints', 'kv_transfer_unsupported');
    return this.sender.probe(endpoints, frames, frameBytes);
  }

  close(): void {
    this.sender.close();
    this.listener?.close();
    this.bridge.close();
  }

  private fromEngine(message: KvFromEngine): void {
    if (message.type === 'reserved') return this.reservations.get(message.transfer)?.(message);
    if (message.type === 'admitted') {
      this.bridge.admitted(message.transfer);
      return this.admitted(message.transfer);
    }
    if (message.type === 'held') return this.bridge.held(message.transfer, message.ring);
    const entry = this.sending.get(message.transfer);
    if (!entry) return;
    if (message.type === 'rows') {
      entry.firstRowAt ??= performance.now();
      entry.outgoing.rows(message);
    } else if (message.type === 'handoff') void this.handOff(message.transfer, entry, message.ids);
    else {
      // Ended at its first token (the route saw the finish): tell the decode replica to let its blocks go.
      this.endSend(message.transfer);
      entry.outgoing.abort('the sequence ended at its first token');
    }
  }

  private admitted(transfer: TransferId): void {
    const entry = this.receiving.get(transfer);
    const stats = entry?.stats;
    if (!entry || !stats) return;
    const transferMs = performance.now() - stats.openedAt;
    const metrics = this.options.metrics;
    metrics.bytes.inc({ direction: 'received' }, stats.bytes);
    metrics.frames.inc({ direction: 'received' }, stats.frames);
    metrics.ringBytes.inc({ direction: 'received' }, stats.ringBytes);
    metrics.directBytes.inc({ direction: 'received' }, stats.directBytes);
    metrics.transfers.inc({ direction: 'received', result: 'done' });
    metrics.seconds.observe({ direction: 'received' }, transferMs / 1000);
    metrics.wireSeconds.observe({ direction: 'received' }, stats.activeMs / 1000);
    entry.admitted({ type: 'kv-received', transfer, bytes: stats.bytes, wireMs: stats.activeMs, transferMs });
  }

  private async handOff(transfer: TransferId, entry: Sending, ids: number[]): Promise<void> {
    const sampledAt = performance.now();
    let stats: SendStats;
    try {
      stats = await entry.outgoing.commit(ids);
    } catch {
      return; // onLost has ended it with the error
    }
    const now = performance.now();
    const metrics = this.options.metrics;
    this.sending.delete(transfer);
    metrics.inFlight.dec({ direction: 'sent' });
    metrics.bytes.inc({ direction: 'sent' }, stats.bytes);
    metrics.transfers.inc({ direction: 'sent', result: 'done' });
    metrics.seconds.observe({ direction: 'sent' }, (now - (entry.firstRowAt ?? sampledAt)) / 1000);
    metrics.wireSeconds.observe({ direction: 'sent' }, stats.activeMs / 1000);
    entry.handoff({ type: 'handoff', transfer, bytes: stats.bytes, wireMs: stats.activeMs, link: stats.kind, prefillMs: sampledAt - entry.startedAt, tailMs: now - sampledAt });
  }
}
