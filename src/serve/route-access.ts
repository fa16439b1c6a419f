/**
 * Which scope each route needs. Every route is covered by a scope or named
 * public here; a path this table does not know needs `inference`, so a
 * caller without a key learns nothing about which routes exist (401, not
 * 404).
 */
import type { Scope } from './api-keys.js';

/** Liveness and readiness (probes cannot send keys), and the dashboard's page and assets (they hold no data). */
const PUBLIC: ReadonlySet<string> = new Set(['/health', '/ready', '/dashboard', '/dashboard/app.js', '/dashboard/app.css', '/dashboard/echarts.min.js']);

const METRICS: ReadonlySet<string> = new Set(['/metrics', '/dashboard/state']);

/** The scope a request needs; undefined for a public route. */
export function scopeOf(path: string): Scope | undefined {
  if (PUBLIC.has(path)) return undefined;
  if (METRICS.has(path)) return 'metrics';
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin';
  return 'inference';
}
