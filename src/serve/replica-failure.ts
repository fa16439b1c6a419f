/**
 * Why a replica could not finish a sequence, as a router needs to know it:
 * every failure here is retryable (the same sequence, resumed from its
 * delivered ids, can finish on another replica), and `reason` is what the
 * router counts its migrations by.
 */
import { TesseraError, type ErrorCode } from '../core/errors.js';
import { isRetryableCode } from './api-error.js';

export type FailureReason =
  /** Connection refused: nothing listens there (the process is gone). */
  | 'refused'
  /** The stream broke or ended without its last output (crash, SIGKILL, reset). */
  | 'broken'
  /** The replica stopped answering its health polls (hung, SIGSTOP, network gone). */
  | 'hang'
  /** 429: the replica's queue is full. */
  | 'busy'
  /** The replica is shutting down (before or after its grace period). */
  | 'draining'
  /** A rank of the replica's mesh went away. */
  | 'rank_lost'
  /** A KV transfer between a prefill and a decode replica broke (disaggregated prefill and decode; the other side is to blame). */
  | 'kv_transfer'
  /** Anything else that says "not here, not now" (loading, engine stopped, wrong key). */
  | 'unavailable';

export class ReplicaFailure extends TesseraError {
  constructor(
    readonly reason: FailureReason,
    code: ErrorCode,
    message: string,
  ) {
    super(code, message);
    this.name = 'ReplicaFailure';
  }
}

export function isReplicaFailure(error: unknown): error is ReplicaFailure {
  return error instanceof ReplicaFailure;
}

const REASON_BY_CODE: Record<string, FailureReason> = { TESSERA_ERR_DRAINING: 'draining', TESSERA_ERR_RANK_LOST: 'rank_lost', TESSERA_ERR_KV_TRANSFER_FAILED: 'kv_transfer' };

/** A coded error a replica sent (an HTTP error body or an in-stream error event). */
export function replicaError(url: string, code: string | null | undefined, message: string): TesseraError {
  if (isRetryableCode(code)) return new ReplicaFailure(REASON_BY_CODE[code!] ?? 'unavailable', code as ErrorCode, `replica ${url}: ${message}`);
  const known = typeof code === 'string' && code.startsWith('TESSERA_ERR_');
  return new TesseraError(known ? (code as ErrorCode) : 'TESSERA_ERR_INVALID_ARGUMENT', `replica ${url}: ${message}`);
}

/** An HTTP status with an OpenAI error body, before any output. */
export function replicaStatusError(url: string, status: number, code: string | null, message: string): TesseraError {
  if (status === 429) return new ReplicaFailure('busy', 'TESSERA_ERR_REPLICA_UNAVAILABLE', `replica ${url} is at capacity: ${message}`);
  if (status === 401) return new ReplicaFailure('unavailable', 'TESSERA_ERR_REPLICA_UNAVAILABLE', `replica ${url} refused the router's key (check --replica-api-key against its --api-key): ${message}`);
  if (status === 503) return replicaError(url, isRetryableCode(code) ? code : 'TESSERA_ERR_REPLICA_UNAVAILABLE', message);
  if (status >= 500) return new TesseraError('TESSERA_ERR_INTERNAL', `replica ${url} failed the request (${status}): ${message}`);
  return replicaError(url, code, message);
}

/** A failed fetch or a stream that broke while reading. */
export function connectionFailure(url: string, error: unknown, hung: boolean): ReplicaFailure {
  if (hung) return new ReplicaFailure('hang', 'TESSERA_ERR_REPLICA_UNAVAILABLE', `replica ${url} stopped answering`);
  // fetch wraps the socket's error in `cause`; node:http throws it directly.
  const cause = (error as { cause?: { code?: string; message?: string } }).cause ?? (error as { code?: string; message?: string });
  const detail = cause?.message ?? (error instanceof Error ? error.message : String(error));
  if (cause?.code === 'ECONNREFUSED') return new ReplicaFailure('refused', 'TESSERA_ERR_REPLICA_UNAVAILABLE', `replica ${url} refused the connection (${detail})`);
  return new ReplicaFailure('broken', 'TESSERA_ERR_REPLICA_UNAVAILABLE', `the stream from replica ${url} broke (${detail})`);
}
