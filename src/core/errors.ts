/**
 * Coded errors. Every failure a user can cause or meet carries a stable
 * `TESSERA_ERR_*` code and a message that says what to do about it; the CLI
 * prints them on one line and the HTTP layer maps them to OpenAI error bodies.
 */
export type ErrorCode =
  | 'TESSERA_ERR_FILE_NOT_FOUND'
  | 'TESSERA_ERR_FILE_READ'
  | 'TESSERA_ERR_BAD_FORMAT'
  | 'TESSERA_ERR_TRUNCATED'
  | 'TESSERA_ERR_UNSUPPORTED_DTYPE'
  | 'TESSERA_ERR_UNSUPPORTED_ARCH'
  | 'TESSERA_ERR_MISSING_TENSOR'
  | 'TESSERA_ERR_BAD_CONFIG'
  | 'TESSERA_ERR_TOKENIZER'
  | 'TESSERA_ERR_KV_LOST'
  | 'TESSERA_ERR_NO_PLACEMENT'
  | 'TESSERA_ERR_CHAT_TEMPLATE'
  | 'TESSERA_ERR_CONTEXT_OVERFLOW'
  | 'TESSERA_ERR_INVALID_ARGUMENT'
  | 'TESSERA_ERR_UNKNOWN_PRESET'
  | 'TESSERA_ERR_PEER_UNAVAILABLE'
  | 'TESSERA_ERR_BACKEND_UNAVAILABLE'
  | 'TESSERA_ERR_SHARD_CONSTRAINT'
  | 'TESSERA_ERR_RANK_LOST'
  | 'TESSERA_ERR_REPLICA_UNAVAILABLE'
  | 'TESSERA_ERR_DRAINING'
  | 'TESSERA_ERR_JOIN_REFUSED'
  | 'TESSERA_ERR_NO_GPU_ADAPTER'
  | 'TESSERA_ERR_GPU_OUT_OF_MEMORY'
  | 'TESSERA_ERR_GRAMMAR'
  | 'TESSERA_ERR_UNKNOWN_MODEL'
  | 'TESSERA_ERR_UNKNOWN_HARDWARE'
  | 'TESSERA_ERR_PLAN_DOES_NOT_FIT'
  | 'TESSERA_ERR_TLS'
  /** A peer's frame or control message broke the wire protocol (bad shape, bad value): its connection is dropped. */
  | 'TESSERA_ERR_PROTOCOL'
  | 'TESSERA_ERR_FRAME_TOO_LARGE'
  | 'TESSERA_ERR_RATE_LIMITED'
  | 'TESSERA_ERR_PROTOCOL_VERSION'
  | 'TESSERA_ERR_MODEL_MISMATCH'
  | 'TESSERA_ERR_LAYOUT_MISMATCH'
  /** A KV transfer between a prefill and a decode replica broke (a replica or the link went away); retryable: the router prefills again. */
  | 'TESSERA_ERR_KV_TRANSFER_FAILED'
  | 'TESSERA_ERR_INTERNAL';

export class TesseraError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'TesseraError';
  }
}

export function isTesseraError(error: unknown): error is TesseraError {
  return error instanceof TesseraError;
}

/** Throws a coded error when `condition` is false. */
export function check(condition: unknown, code: ErrorCode, message: string): asserts condition {
  if (!condition) throw new TesseraError(code, message);
}

/**
 * A failure that concerns one segment (one sequence) of a batched step, found
 * before anything was computed: only that sequence fails; the others can run
 * the step again.
 */
export class SegmentError extends TesseraError {
  constructor(
    code: ErrorCode,
    message: string,
    /** Index of the segment in its batch. */
    readonly segment: number,
  ) {
    super(code, message);
  }
}
