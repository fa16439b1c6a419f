/**
 * API keys and their scopes. A key is kept only as its SHA-256 digest and
 * compared by digest with timingSafeEqual against every key, with no early
 * exit, so neither the answer's timing nor memory holds a key's bytes to
 * find. A key grants scopes: `inference` (the OpenAI routes, tokenizing,
 * the replica API), `metrics` (/metrics, the dashboard's data) and `admin`
 * (re-sharding, draining). Keys carry a label for messages; a secret is
 * never printed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import { ApiError } from './api-error.js';

export const SCOPES = ['inference', 'metrics', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key gets when nobody says: what clients had before scopes, never admin. */
export const DEFAULT_SCOPES: readonly Scope[] = ['inference', 'metrics'];

export interface ApiKey {
  readonly digest: Buffer;
  readonly scopes: ReadonlySet<Scope>;
  /** Where it came from ("TESSERA_API_KEY", "keys.txt line 3"): for messages, never the secret. */
  readonly label: string;
}

function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function parseScopes(text: string, where: string): Scope[] {
  const scopes = text.split(',').map((scope) => scope.trim()).filter((scope) => scope !== '');
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${where}: unknown scope "${scope}"; scopes are ${SCOPES.join(', ')}`);
  }
  return scopes as Scope[];
}

export function apiKey(secret: string, scopes: readonly Scope[], label: string): ApiKey {
  if (secret === '') throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${label}: the API key is empty`);
  if (/\s/.test(secret)) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${label}: an API key cannot hold spaces`);
  return { digest: digestOf(secret), scopes: new Set(scopes), label };
}

/** The bearer token of an Authorization header, or undefined. */
function bearerOf(header: string | undefined): string | undefined {
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export class Keyring {
  constructor(private readonly keys: readonly ApiKey[]) {}

  /**
   * No key with a scope other than admin: every route but /admin is open
   * (the server binds to loopback unless told otherwise). An admin key alone
   * turns the admin routes on without closing the API.
   */
  get open(): boolean {
    return this.keys.every((key) => [...key.scopes].every((scope) => scope === 'admin'));
  }

  /** The key a header presents, compared against every key in constant time per key. */
  find(header: string | undefined): ApiKey | undefined {
    const token = bearerOf(header);
    if (token === undefined) return undefined;
    const given = digestOf(token);
    let found: ApiKey | undefined;
    for (const key of this.keys) if (timingSafeEqual(given, key.digest) && !found) found = key;
    return found;
  }

  /** Throws a 401 (no key, wrong key) or 403 (a key without `scope`); public routes pass `undefined`. */
  authorize(header: string | undefined, scope: Scope | undefined): void {
    if (scope === undefined) return;
    if (scope === 'admin') {
      // Admin routes are never open: without an admin key they are off.
      if (!this.keys.some((key) => key.scopes.has('admin'))) throw new ApiError(403, 'admin routes are off; start serve with --admin-key (or $TESSERA_ADMIN_KEY, or an admin line in --api-key-file) to use them', 'permission_error', null, 'admin_disabled');
    } else if (this.open) return;
    const key = this.find(header);
    if (!key) {
      const message = header === undefined || header === '' ? 'no API key given; send Authorization: Bearer KEY' : 'the API key is wrong; send a key the server was started with';
      throw new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');
    }
    if (!key.scopes.has(scope)) throw new ApiError(403, `this key does not have the ${scope} scope this route needs; use a key that has it (scopes are set in --api-key-file)`, 'permission_error', null, 'insufficient_scope');
  }
}
