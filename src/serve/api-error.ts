/**
 * Errors on the wire: every failure becomes an HTTP status and an OpenAI
 * error body `{"error":{"message","type","param","code"}}`, which the
 * official clients turn into their typed exceptions.
 */
import { isTesseraError, type ErrorCode } from '../core/errors.js';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A 400 for a field of the request body. */
export function badField(param: string, message: string): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, 'invalid_value');
}

/**
 * Failures of the serving side, not of the request: the same request can
 * succeed elsewhere or later. They are 503s, and a router moves the request
 * to another replica when it sees one of these codes.
 */
const RETRYABLE_CODES: ReadonlySet<string> = new Set<ErrorCode>(['TESSERA_ERR_RANK_LOST', 'TESSERA_ERR_REPLICA_UNAVAILABLE', 'TESSERA_ERR_DRAINING', 'TESSERA_ERR_KV_TRANSFER_FAILED']);

export function isRetryableCode(code: string | null | undefined): boolean {
  return code !== null && code !== undefined && RETRYABLE_CODES.has(code);
}

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  TESSERA_ERR_INVALID_ARGUMENT: 400,
  TESSERA_ERR_CONTEXT_OVERFLOW: 400,
  TESSERA_ERR_CHAT_TEMPLATE: 400,
  TESSERA_ERR_TOKENIZER: 400,
  TESSERA_ERR_GRAMMAR: 400,
  TESSERA_ERR_RANK_LOST: 503,
  TESSERA_ERR_REPLICA_UNAVAILABLE: 503,
  TESSERA_ERR_DRAINING: 503,
  TESSERA_ERR_KV_TRANSFER_FAILED: 503,
};

const TYPE_BY_STATUS: Record<number, string> = { 400: 'invalid_request_error', 503: 'service_unavailable' };

/** Any thrown value as an ApiError; internal failures keep their message but not their stack. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isTesseraError(error)) {
    const status = STATUS_BY_CODE[error.code] ?? 500;
    return new ApiError(status, error.message, TYPE_BY_STATUS[status] ?? 'internal_error', null, error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, `internal error: ${message}`, 'internal_error', null, 'TESSERA_ERR_INTERNAL');
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}
