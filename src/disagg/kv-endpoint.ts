/**
 * Where a decode replica takes KV transfers, and which of its endpoints a
 * prefill replica uses: a Unix domain socket when both run on one machine
 * (the same host id), else TCP. The order is the preference: the fastest
 * link the two can share first. (A shared-memory link slots in the same way:
 * an endpoint kind, and its place at the head of the list for one host.)
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { TesseraError } from '../core/errors.js';

export type KvEndpoint = { kind: 'unix'; path: string; hostId: string } | { kind: 'tcp'; host: string; port: number };

export type KvLinkKind = KvEndpoint['kind'];

/** `--kv-transport`: let the endpoints decide, or insist on one kind. */
export type KvTransportChoice = 'auto' | KvLinkKind;
export const KV_TRANSPORT_CHOICES: readonly KvTransportChoice[] = ['auto', 'tcp', 'unix'];

let cachedHostId: string | undefined;

/**
 * This machine, as two replicas compare it: the host name and the kernel's
 * boot id (two containers on one kernel share it, and they may share a
 * Unix socket's directory; when they do not, the TCP endpoint is next).
 */
export function localHostId(): string {
  if (cachedHostId !== undefined) return cachedHostId;
  let boot = '';
  try {
    boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // Not Linux: the host name alone.
  }
  cachedHostId = `${hostname()}/${boot}`;
  return cachedHostId;
}

/** The endpoints worth trying, best first: the Unix socket only on the same host; `choice` keeps one kind. */
export function usableEndpoints(endpoints: readonly KvEndpoint[], choice: KvTransportChoice, hostId = localHostId()): KvEndpoint[] {
  const usable = endpoints.filter((endpoint) => (choice === 'auto' || endpoint.kind === choice) && (endpoint.kind !== 'unix' || endpoint.hostId === hostId));
  const rank = (endpoint: KvEndpoint): number => (endpoint.kind === 'unix' ? 0 : 1);
  const sorted = [...usable].sort((a, b) => rank(a) - rank(b));
  if (sorted.length === 0) {
    const offered = endpoints.map(describeEndpoint).join(', ') || 'none';
    throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `no KV endpoint of the decode replica can be reached with --kv-transport ${choice} from this host (offered: ${offered})`);
  }
  return sorted;
}

export function describeEndpoint(endpoint: KvEndpoint): string {
  return endpoint.kind === 'unix' ? `unix:${endpoint.path}` : `tcp://${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}

/** A plain-data check of endpoints received over HTTP (they come from another process). */
export function parseEndpoints(value: unknown): KvEndpoint[] | undefined {
  if (!Array.isArray(value) || value.length === 0 || value.length > 8) return undefined;
  const endpoints: KvEndpoint[] = [];
  for (const item of value as Record<string, unknown>[]) {
    if (item?.kind === 'unix' && typeof item.path === 'string' && typeof item.hostId === 'string') endpoints.push({ kind: 'unix', path: item.path, hostId: item.hostId });
    else if (item?.kind === 'tcp' && typeof item.host === 'string' && Number.isInteger(item.port) && (item.port as number) > 0 && (item.port as number) < 65536) endpoints.push({ kind: 'tcp', host: item.host, port: item.port as number });
    else return undefined;
  }
  return endpoints;
}
