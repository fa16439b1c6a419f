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

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  TESSERA_ERR_INVALID_ARGUMENT: 400,
  TESSERA_ERR_CONTEXT_OVERFLOW: 400,
  TESSERA_ERR_CHAT_TEMPLATE: 400,
  TESSERA_ERR_TOKENIZER: 400,
  TESSERA_ERR_GRAMMAR: 400,
};

/** Any thrown value as an ApiError; internal failures keep their message but not their stack. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (isTesseraError(error)) {
    const status = STATUS_BY_CODE[error.code] ?? 500;
    return new ApiError(status, error.message, status === 500 ? 'internal_error' : 'invalid_request_error', null, error.code);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ApiError(500, `internal error: ${message}`, 'internal_error', null, 'TESSERA_ERR_INTERNAL');
}

export function errorBody(error: ApiError): ErrorBody {
  return { error: { message: error.message, type: error.type, param: error.param, code: error.code } };
}
