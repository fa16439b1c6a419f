/**
 * Keys and TLS on the commands that serve HTTP (`serve`, `router`): where
 * keys come from (TESSERA_API_KEY, --api-key-file, and --api-key, which
 * works but warns, since any user can read a process's arguments), and
 * the certificate and key for HTTPS. Warnings name the risk, never a key.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { TesseraError } from '../core/errors.js';
import { apiKey, DEFAULT_SCOPES, parseScopes, type ApiKey } from '../serve/api-keys.js';
import { readTlsFiles, type TlsFiles } from '../serve/tls-files.js';

export interface SecurityFlags {
  host: string;
  apiKey?: string;
  /** serve only: a key with the admin scope alone. */
  adminKey?: string;
  apiKeyFile?: string[];
  tlsCert?: string;
  tlsKey?: string;
}

export interface Security {
  readonly keys: ApiKey[];
  readonly tls?: TlsFiles;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** --api-key (with its own help text per command), --api-key-file, --tls-cert, --tls-key. */
export function addSecurityOptions(command: Command, apiKeyHelp: string): Command {
  return command
    .option('--api-key <key>', `${apiKeyHelp} (shows in the process list: prefer $TESSERA_API_KEY or --api-key-file)`)
    .option('--api-key-file <file>', 'keys, one a line: KEY [scope,scope] (scopes: inference, metrics, admin; default inference,metrics); repeatable', collect)
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain); with --tls-key')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert');
}

/** Keys from a file: `KEY [scopes]` a line; blank lines and `#` comments skipped. */
export function readKeyFile(path: string): ApiKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `--api-key-file ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  const keys = text.split('\n').flatMap((line, index) => {
    const content = line.replace(/#.*$/, '').trim();
    if (content === '') return [];
    const [secret, scopes, ...rest] = content.split(/\s+/);
    const where = `${path} line ${index + 1}`;
    if (rest.length > 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${where}: write KEY and then scopes separated by commas, without spaces between scopes`);
    return [apiKey(secret!, scopes === undefined ? DEFAULT_SCOPES : parseScopes(scopes, where), where)];
  });
  if (keys.length === 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--api-key-file ${path} holds no key`);
  return keys;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** The keys and TLS files the flags and environment give, with warnings for what is exposed. */
export function securityOf(flags: SecurityFlags, warn: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Security {
  const keys: ApiKey[] = [];
  if (flags.apiKey !== undefined) {
    warn('warning: --api-key shows the key to anyone who can list processes (ps); use $TESSERA_API_KEY or --api-key-file');
    keys.push(apiKey(flags.apiKey, DEFAULT_SCOPES, '--api-key'));
  } else if (env.TESSERA_API_KEY !== undefined && env.TESSERA_API_KEY !== '') {
    keys.push(apiKey(env.TESSERA_API_KEY, DEFAULT_SCOPES, 'TESSERA_API_KEY'));
  }
  if (flags.adminKey !== undefined) {
    warn('warning: --admin-key shows the key to anyone who can list processes (ps); use $TESSERA_ADMIN_KEY or an admin line in --api-key-file');
    keys.push(apiKey(flags.adminKey, ['admin'], '--admin-key'));
  } else if (env.TESSERA_ADMIN_KEY !== undefined && env.TESSERA_ADMIN_KEY !== '') {
    keys.push(apiKey(env.TESSERA_ADMIN_KEY, ['admin'], 'TESSERA_ADMIN_KEY'));
  }
  for (const path of flags.apiKeyFile ?? []) {
    // Others could read the keys: say so, the way ssh does for its keys.
    if ((statSync(path, { throwIfNoEntry: false })?.mode ?? 0) & 0o077) warn(`warning: --api-key-file ${path} can be read by other users; chmod 600 it`);
    keys.push(...readKeyFile(path));
  }
  const tls = readTlsFiles(flags.tlsCert, flags.tlsKey);
  if (!isLoopback(flags.host)) {
    if (keys.every((key) => [...key.scopes].every((scope) => scope === 'admin'))) warn(`warning: serving on ${flags.host} with no API key: anyone who can reach it can use it (set $TESSERA_API_KEY or --api-key-file)`);
    else if (!tls) warn(`warning: serving on ${flags.host} over plain HTTP: keys and prompts cross the network in clear (give --tls-cert and --tls-key, or put a TLS proxy in front)`);
  }
  return { keys, tls };
}
