/**
 * Operating a mesh while it serves: `GET /admin/cluster` (layout, nodes with
 * rank, health, pid, hardware and bytes held, re-shards so far) and
 * `POST /admin/reshard {"tp":…, "pp":…}` (or `{"auto":true}`), which
 * answers once the new plan serves. Both need `Authorization: Bearer KEY`
 * with the admin key (--admin-key / $TESSERA_ADMIN_KEY), which is not the
 * API key: a client of the API cannot move the mesh. Also the Prometheus
 * series of re-shards.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isTesseraError } from '../core/errors.js';
import type { ReshardRecord } from '../cluster/reshard-log.js';
import { ApiError, badField } from './api-error.js';
import type { EngineHost } from './engine-host.js';
import type { AdminAction } from './engine-messages.js';

export interface AdminRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  /** Parsed JSON body of a POST. */
  body?: unknown;
}

export interface AdminResponse {
  status: number;
  body: unknown;
}

export async function serveAdmin(request: AdminRequest, host: EngineHost | undefined, adminKey: string | undefined): Promise<AdminResponse> {
  checkAdminKey(request.authorization, adminKey);
  const action = adminAction(request);
  if (!host) throw new ApiError(503, 'the model is still loading; retry when GET /ready says ready', 'service_unavailable', null, 'loading');
  if (!host.mesh) throw new ApiError(409, 'this server runs no mesh of ranks; start it with --tp/--pp or --listen to use /admin routes', 'invalid_request_error', null, 'no_mesh');
  try {
    return { status: 200, body: await host.mesh.admin(action) };
  } catch (error) {
    if (!isTesseraError(error)) throw error;
    const status = error.code === 'TESSERA_ERR_NO_PLACEMENT' ? 409 : error.code === 'TESSERA_ERR_INVALID_ARGUMENT' ? 400 : error.code === 'TESSERA_ERR_RANK_LOST' ? 503 : 500;
    throw new ApiError(status, error.message, status === 500 ? 'internal_error' : 'invalid_request_error', null, error.code);
  }
}

/** Whether the server serves admin routes on this path. */
export function isAdminPath(path: string): boolean {
  return path.startsWith('/admin/');
}

function checkAdminKey(authorization: string | undefined, adminKey: string | undefined): void {
  if (adminKey === undefined) {
    throw new ApiError(403, 'admin routes are off; start serve with --admin-key KEY (or $TESSERA_ADMIN_KEY) to use them', 'permission_error', null, 'admin_disabled');
  }
  if (authorization !== `Bearer ${adminKey}`) {
    const message = authorization === undefined ? 'no admin key given; send Authorization: Bearer ADMIN_KEY' : 'the admin key is wrong; send the --admin-key the server was started with';
    throw new ApiError(401, message, 'authentication_error', null, 'invalid_admin_key');
  }
}

function adminAction({ method, path, body }: AdminRequest): AdminAction {
  if (path === '/admin/cluster') {
    if (method !== 'GET') throw new ApiError(405, '/admin/cluster takes GET', 'invalid_request_error', null, 'method_not_allowed');
    return { kind: 'describe' };
  }
  if (path === '/admin/reshard') {
    if (method !== 'POST') throw new ApiError(405, '/admin/reshard takes POST', 'invalid_request_error', null, 'method_not_allowed');
    return { kind: 'reshard', shape: reshardShape(body) };
  }
  throw new ApiError(404, `no route ${method} ${path}; the admin routes are GET /admin/cluster and POST /admin/reshard`, 'invalid_request_error', null, 'not_found');
}

function reshardShape(body: unknown): { tp: number; pp: number } | 'auto' {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badField('body', 'send a JSON object: {"tp": 2, "pp": 1} or {"auto": true}');
  const fields = body as Record<string, unknown>;
  if (fields.auto === true) return 'auto';
  const degree = (name: 'tp' | 'pp'): number => {
    const value = fields[name] ?? 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1024) throw badField(name, `${name} must be an integer from 1 to 1024`);
    return value;
  };
  return { tp: degree('tp'), pp: degree('pp') };
}

/** Re-shard series in `registry`, fed by the records of the host's mesh (none without one). */
export function recordReshards(registry: Registry, host: EngineHost): void {
  const mesh = host.mesh;
  if (!mesh) return;
  const total = new Counter({ name: 'tessera_reshards_total', help: 'Mesh re-shards by cause', labelNames: ['reason'], registers: [registry] });
  const generation = new Gauge({ name: 'tessera_mesh_generation', help: 'Plan generation of the mesh', registers: [registry] });
  const seconds = new Histogram({
    name: 'tessera_reshard_seconds',
    help: 'Parts of a re-shard: replan (decided to plan chosen), load (to every rank ready), first_logits (decided to the first resumed logits), re_prefill (ready to decoding again)',
    labelNames: ['part'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const bytes = new Counter({ name: 'tessera_reshard_bytes_read_total', help: 'Model file bytes ranks read to re-shard', registers: [registry] });
  const seen = new Map<number, Set<string>>();
  mesh.onReshard((record: ReshardRecord) => {
    let parts = seen.get(record.generation);
    if (!parts) {
      seen.set(record.generation, (parts = new Set()));
      total.inc({ reason: record.reason });
      generation.set(record.generation);
      bytes.inc(record.ranks.reduce((sum, rank) => sum + rank.bytesRead, 0));
    }
    const times: Record<string, number | undefined> = { replan: record.replanMs, load: record.loadMs, first_logits: record.firstLogitsMs, re_prefill: record.rePrefillMs };
    for (const [part, ms] of Object.entries(times)) {
      if (ms === undefined || parts.has(part)) continue;
      parts.add(part);
      seconds.observe({ part }, ms / 1000);
    }
  });
}
