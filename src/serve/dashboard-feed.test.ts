/**
 * The dashboard's server side without a browser: its routes (the page, its
 * assets, echarts from the installed package, the state), the events it
 * reads from counters, and a router's dashboard showing its replicas.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { launchRouter } from '../router/launch-router.js';
import { synthesize } from '../synth/synthesize.js';
import { DashboardFeed, type DashboardState } from './dashboard-feed.js';
import { launchServer } from './launch.js';
import { TesseraServer } from './server.js';

test('the feed turns counter increases into events: migrations, replica changes, re-shards (a series that appears later too)', async () => {
  const registry = new Registry();
  const migrations = new Counter({ name: 'tessera_router_migrations_total', help: 'h', labelNames: ['cause'], registers: [registry] });
  const reshards = new Counter({ name: 'tessera_reshards_total', help: 'h', labelNames: ['reason'], registers: [registry] });
  migrations.inc({ cause: 'broken' }, 5);
  const feed = new DashboardFeed({ registry, model: () => undefined });
  try {
    assert.deepEqual((await feed.snapshot()).events, [], 'what happened before anyone watched is the baseline');
    migrations.inc({ cause: 'broken' }, 2);
    reshards.inc({ reason: 'node lost' });
    const events = (await feed.snapshot()).events.map(({ kind, text }) => ({ kind, text }));
    assert.deepEqual(events, [
      { kind: 'migration', text: '2 sequence(s) migrated to another replica (broken)' },
      { kind: 'reshard', text: 'the mesh re-sharded (node lost)' },
    ]);
    const state = await feed.snapshot();
    assert.equal(state.events.length, 2);
    assert.equal(state.model, null);
    assert.deepEqual(state.health, { ready: false, status: 'loading' });
  } finally {
    feed.close();
  }
});

test('GET /dashboard serves the page with a strict CSP, its assets and echarts from the package; other methods and paths are refused', async () => {
  const server = await TesseraServer.listen({ host: '127.0.0.1', port: 0, maxBodyBytes: 1024 });
  try {
    const page = await fetch(`${server.url}/dashboard`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self';/);
    assert.match(await page.text(), /<script src="\/dashboard\/echarts\.min\.js"/);
    const echarts = await fetch(`${server.url}/dashboard/echarts.min.js`);
    const installed = readFileSync(createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'));
    assert.ok(Buffer.from(await echarts.arrayBuffer()).equals(installed), 'echarts is the installed package file');
    assert.equal((await fetch(`${server.url}/dashboard/app.js`)).status, 200);
    const state = (await (await fetch(`${server.url}/dashboard/state`)).json()) as DashboardState;
    assert.equal(state.model, null);
    assert.equal(state.health.status, 'loading');
    const posted = await fetch(`${server.url}/dashboard/state`, { method: 'POST', body: '{}' });
    assert.equal(posted.status, 405);
    const missing = await fetch(`${server.url}/dashboard/../../etc/passwd`);
    assert.equal(missing.status, 404);
    const body = (await missing.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'not_found');
  } finally {
    await server.close();
  }
});

test("a router's dashboard shows its replicas, their status and load", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-dashboard-router-'));
  const model = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: model, format: 'gguf', seed: 3 });
  const replica = await launchServer({ model, backend: 'reference', port: 0, core: { kvCacheMib: 4, maxNumSeqs: 8, maxBatchTokens: 64 } });
  const router = await launchRouter({ model, port: 0, replicas: [replica.url], pollMs: 100 });
  try {
    const deadline = Date.now() + 30_000;
    let state: DashboardState;
    do {
      state = (await (await fetch(`${router.server.url}/dashboard/state`)).json()) as DashboardState;
    } while (state.topology?.replicas[0]?.status !== 'up' && Date.now() < deadline && (await new Promise((resolve) => setTimeout(resolve, 100))) === undefined);
    assert.equal(state.topology?.kind, 'router');
    assert.deepEqual(state.topology?.replicas.map((entry) => [entry.name, entry.status, entry.load]), [[replica.url, 'up', 0]]);
    assert.equal(state.health.ready, true);
    assert.equal(state.model?.blockSize, 16);
  } finally {
    await router.server.close();
    await replica.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
