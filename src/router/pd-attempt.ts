/**
 * One attempt at a sequence on a prefill replica and a decode replica:
 *
 *   1. to the decode replica, the sequence with `kv.receive`: it reserves
 *      blocks and says which leading positions it already caches;
 *   2. to the prefill replica, the sequence with `kv.send` (those positions
 *      to skip, the decode replica's endpoints): it computes the prompt,
 *      streams the KV rows, and answers the first token — passed on to the
 *      client at once — then hands off;
 *   3. the decode replica admits the sequence when every row and the first
 *      token are in, and streams the rest.
 *
 * To the router it is one stream of outputs: decode outputs that overtake
 * the prefill's first token wait for it. A failure of either replica ends
 * the attempt with the replica to blame — the one whose stream broke, or,
 * for a broken transfer reported by one side, the other side — and the
 * router resumes the sequence from its delivered ids (re-prefilling it).
 */
import { randomBytes } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import type { TransferId } from '../engine/kv-messages.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { SequenceId, SequenceUpdate } from '../serve/engine-host.js';
import type { KvReplicaEvent } from '../serve/pd-protocol.js';
import type { RemoteEngineHost } from '../serve/remote-engine-host.js';
import type { ReplicaId } from './replica-state.js';

export interface PairMember {
  id: ReplicaId;
  host: RemoteEngineHost;
}

/** Where a disaggregated sequence's time to its first decoded token went (ms), and what moved. */
export interface PdPhases {
  /** Sent → the prefill replica's first token. */
  prefillMs: number;
  /** First token → the decode replica holding every row (the part of the transfer not hidden behind the prefill). */
  transferMs: number;
  /** Decode replica admitted it → its first output (the second token). */
  firstDecodeMs: number;
  bytes: number;
  /** The rows' summed time on the wire at the decode replica. */
  wireMs: number;
}

export interface PairListener {
  onOutput(output: SequenceUpdate): void;
  onError(error: TesseraError, culprit: ReplicaId): void;
  /** A replica answered (its half-open trial, if it was one, succeeded). */
  onAnswered(replica: ReplicaId): void;
  onPhases(phases: PdPhases): void;
  /** The prefill replica's part is over (handed off, finished, failed or cancelled): it no longer counts it as load. */
  onPrefillDone(): void;
}

export class DisaggregatedAttempt {
  readonly transfer = randomBytes(12).toString('base64url') as TransferId;
  private decodeSequence: SequenceId | undefined;
  private prefillSequence: SequenceId | undefined;
  private readonly startedAt = performance.now();
  private firstTokenAt: number | undefined;
  private admittedAt: number | undefined;
  private received: Extract<KvReplicaEvent, { type: 'kv-received' }> | undefined;
  /** Decode outputs that arrived before the prefill's first token. */
  private readonly held: SequenceUpdate[] = [];
  private prefillEnded = false;
  private prefillDone = false;
  private ended = false;

  constructor(
    private readonly prefill: PairMember,
    private readonly decode: PairMember,
    private readonly request: SequenceRequest,
    private readonly listener: PairListener,
  ) {}

  start(): void {
    this.decodeSequence = this.decode.host.submit(
      this.request,
      { onOutput: (output) => this.decoded(output), onError: (error) => this.failed(error, 'decode') },
      { kv: { receive: { transfer: this.transfer } }, onEvent: (event) => this.decodeEvent(event) },
    );
  }

  /** Stops both replicas' streams (the client went away, or the attempt is over). */
  cancel(): void {
    this.ended = true;
    if (this.decodeSequence) this.decode.host.cancel(this.decodeSequence);
    if (this.prefillSequence) this.prefill.host.cancel(this.prefillSequence);
    this.endPrefill();
  }

  private endPrefill(): void {
    if (this.prefillDone) return;
    this.prefillDone = true;
    this.listener.onPrefillDone();
  }

  private decodeEvent(event: KvReplicaEvent): void {
    if (this.ended) return;
    if (event.type === 'kv-reserved') {
      this.listener.onAnswered(this.decode.id);
      this.prefillSequence = this.prefill.host.submit(
        this.request,
        { onOutput: (output) => this.prefilled(output), onError: (error) => this.failed(error, 'prefill') },
        { kv: { send: { transfer: this.transfer, skipPositions: event.skipPositions, endpoints: event.endpoints } }, onEvent: (next) => this.prefillEvent(next) },
      );
    } else if (event.type === 'kv-received') {
      this.admittedAt = performance.now();
      this.received = event;
    }
  }

  private prefillEvent(event: KvReplicaEvent): void {
    if (event.type !== 'handoff') return;
    this.prefillEnded = true;
    this.endPrefill();
  }

  /** The prefill replica's output: the first token (maybe the last, when the sequence ends there). */
  private prefilled(output: SequenceUpdate): void {
    if (this.ended) return;
    this.firstTokenAt ??= performance.now();
    this.listener.onAnswered(this.prefill.id);
    if (output.finish) {
      // Done at its first token: the decode replica's reservation is not needed.
      this.prefillEnded = true;
      this.ended = true;
      if (this.decodeSequence) this.decode.host.cancel(this.decodeSequence);
      this.endPrefill();
    }
    this.listener.onOutput(output);
    for (const held of this.held.splice(0)) this.decoded(held);
  }

  private decoded(output: SequenceUpdate): void {
    if (this.ended) return;
    if (this.firstTokenAt === undefined) return void this.held.push(output);
    if (this.received && this.admittedAt !== undefined && output.ids.length > 0) {
      const { bytes, wireMs } = this.received;
      this.listener.onPhases({ prefillMs: this.firstTokenAt - this.startedAt, transferMs: Math.max(0, this.admittedAt - this.firstTokenAt), firstDecodeMs: performance.now() - this.admittedAt, bytes, wireMs });
      this.received = undefined;
    }
    if (output.finish) this.ended = true;
    this.listener.onOutput(output);
  }

  private failed(error: TesseraError, side: 'prefill' | 'decode'): void {
    if (this.ended) return;
    if (side === 'prefill' && this.prefillEnded) return; // handed off already: its stream is no longer needed
    this.ended = true;
    const other = side === 'prefill' ? this.decode : this.prefill;
    const own = side === 'prefill' ? this.prefill : this.decode;
    // A transfer that broke is the other side's doing: its process or its end of the link went away.
    const culprit = error.code === 'TESSERA_ERR_KV_TRANSFER_FAILED' ? other : own;
    const otherSequence = side === 'prefill' ? this.decodeSequence : this.prefillSequence;
    if (otherSequence) other.host.cancel(otherSequence);
    this.endPrefill();
    this.listener.onError(error, culprit.id);
  }
}
