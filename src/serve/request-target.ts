/**
 * The path of a request's target. Clients send origin-form ("/path?query");
 * parsing that against a base URL would read "//host/path" as a host and
 * throw on "//" (found by the HTTP fuzzer: a 500), so the target is
 * appended to a fixed origin instead. Absolute-form targets (proxies) are
 * parsed as they are; anything else is a 400.
 */
import { ApiError } from './api-error.js';

export function requestPath(target: string | undefined): string {
  const text = target ?? '/';
  try {
    return (text.startsWith('/') ? new URL(`http://localhost${text}`) : new URL(text)).pathname;
  } catch {
    throw new ApiError(400, `the request target ${JSON.stringify(text.slice(0, 100))} is not a URL path; send /v1/...`, 'invalid_request_error', null, 'invalid_request_target');
  }
}
