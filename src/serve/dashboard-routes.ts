/**
 * GET /dashboard and its assets: the page (dashboard/ at the package root:
 * HTML, script, style), echarts from the installed package (never a CDN),
 * and /dashboard/state, the feed's snapshot as JSON, which the page polls.
 * The page and its assets hold no data; the state is what needs a key.
 * The page may run no script but its own ('self' only, nothing inline).
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError } from './api-error.js';
import type { DashboardFeed } from './dashboard-feed.js';

export const DASHBOARD_PATH = '/dashboard';
export const DASHBOARD_STATE_PATH = '/dashboard/state';

const ASSET_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboard');
const CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

interface Asset {
  readonly type: string;
  readonly file: () => string;
}

function echartsFile(): string {
  try {
    return createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js');
  } catch {
    throw new ApiError(404, 'the dashboard charts need the echarts package (npm install echarts)', 'invalid_request_error', null, 'not_found');
  }
}

const ASSETS: Readonly<Record<string, Asset>> = {
  [DASHBOARD_PATH]: { type: 'text/html; charset=utf-8', file: () => join(ASSET_DIR, 'index.html') },
  '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', file: () => join(ASSET_DIR, 'app.js') },
  '/dashboard/app.css': { type: 'text/css; charset=utf-8', file: () => join(ASSET_DIR, 'app.css') },
  '/dashboard/echarts.min.js': { type: 'text/javascript; charset=utf-8', file: echartsFile },
};

const cache = new Map<string, Buffer>();

function assetBytes(path: string, asset: Asset): Buffer {
  let bytes = cache.get(path);
  if (!bytes) {
    bytes = readFileSync(asset.file());
    cache.set(path, bytes);
  }
  return bytes;
}

export function isDashboardPath(path: string): boolean {
  return path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`);
}

/** Serves one dashboard path (GET only); the caller has already checked the key where one is needed. */
export async function serveDashboard(feed: DashboardFeed, method: string, path: string, response: ServerResponse): Promise<void> {
  if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, `${path} takes GET`, 'invalid_request_error', null, 'method_not_allowed');
  const headers = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'content-security-policy': CSP };
  if (path === DASHBOARD_STATE_PATH) {
    const text = JSON.stringify(await feed.snapshot());
    response.writeHead(200, { ...headers, 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    response.end(method === 'HEAD' ? undefined : text);
    return;
  }
  const asset = ASSETS[path];
  if (!asset) throw new ApiError(404, `no dashboard file ${path}`, 'invalid_request_error', null, 'not_found');
  const bytes = assetBytes(path, asset);
  response.writeHead(200, { ...headers, 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': bytes.length });
  response.end(method === 'HEAD' ? undefined : bytes);
}
