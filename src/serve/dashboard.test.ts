/**
 * /dashboard in headless Chromium against a real server on an MoE model:
 * the page renders its topology and charts, the charts move while the
 * openai client generates, the expert heat map fills, and a screenshot of
 * the page is not blank (decoded by the browser and its pixels counted).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import type { Page } from 'puppeteer-core';
import { synthesize } from '../synth/synthesize.js';
import { launchBrowser } from '../testing/headless-browser.js';
import { launchServer } from './launch.js';

// The browser globals the page functions below use (the project compiles without the DOM library; these run in Chromium).
interface PageNode {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { drawImage(image: unknown, x: number, y: number): void; getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
declare const document: { body: PageNode; getElementById(id: string): PageNode | null; createElement(tag: 'canvas'): PageCanvas };
declare const Image: new () => { src: string; width: number; height: number; decode(): Promise<void> };

interface ChartSeries {
  readonly lengths: number[];
  readonly throughput: number[];
  readonly heatCells: number;
}

/** What the page's echarts instances hold right now. */
async function chartSeries(page: Page): Promise<ChartSeries> {
  return page.evaluate(() => {
    const chart = (id: string) => (globalThis as unknown as { echarts: { getInstanceByDom(node: PageNode): { getOption(): { series: { data: unknown[] }[] } } } }).echarts.getInstanceByDom(document.getElementById(id)!);
    const lengths = ['throughput', 'queue', 'kv', 'prefix'].map((id) => chart(id).getOption().series[0]!.data.length);
    return { lengths, throughput: chart('throughput').getOption().series[0]!.data as number[], heatCells: chart('experts').getOption().series[0]!.data.length };
  });
}

async function samples(page: Page): Promise<number> {
  return page.evaluate(() => Number(document.body.dataset.samples));
}

/** Share of the screenshot's pixels that are not the page background, and how many colours it has (by the browser's own PNG decoder). */
async function screenshotInk(page: Page, png: Uint8Array): Promise<{ inked: number; colours: number }> {
  const url = `data:image/png;base64,${Buffer.from(png).toString('base64')}`;
  return page.evaluate(async (source: string) => {
    const image = new Image();
    image.src = source;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.width;
    canvas.height = image.height;
    const context = canvas.getContext('2d')!;
    context.drawImage(image, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    const background = [pixels[4 * (canvas.width * (canvas.height - 1))]!, pixels[4 * (canvas.width * (canvas.height - 1)) + 1]!, pixels[4 * (canvas.width * (canvas.height - 1)) + 2]!];
    const colours = new Set<number>();
    let inked = 0;
    for (let at = 0; at < pixels.length; at += 4) {
      const [r, g, b] = [pixels[at]!, pixels[at + 1]!, pixels[at + 2]!];
      colours.add((r << 16) | (g << 8) | b);
      if (Math.abs(r - background[0]!) + Math.abs(g - background[1]!) + Math.abs(b - background[2]!) > 24) inked++;
    }
    return { inked: inked / (pixels.length / 4), colours: colours.size };
  }, url);
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

test('the dashboard renders in headless Chromium, its charts follow the load, and a screenshot is not blank', { timeout: 240_000 }, async (t) => {
  const headless = await launchBrowser(t);
  if (!headless) return;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-dashboard-'));
  const modelPath = join(dir, 'tiny-mixtral.gguf');
  await synthesize({ preset: 'tiny-mixtral', arch: 'mixtral', dtype: 'f32', out: modelPath, format: 'gguf', seed: 4 });
  const server = await launchServer({ model: modelPath, backend: 'reference', port: 0, servedModelName: 'tiny-moe', core: { kvCacheMib: 8, maxNumSeqs: 8, maxBatchTokens: 64 } });
  try {
    const page = await headless.browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    page.on('console', (message) => void (message.type() === 'error' && problems.push(message.text())));
    await page.setViewport({ width: 1280, height: 1400 });
    await page.goto(`${server.url}/dashboard?interval=200`, { waitUntil: 'load' });
    await waitFor('the charts and a first sample', async () => (await page.evaluate(() => document.body.dataset.charts)) === 'ready' && (await samples(page)) >= 1);
    assert.match(await page.$eval('#model', (node) => node.textContent ?? ''), /^tiny-moe · reference · \d+ f32 KV blocks of 16$/);
    assert.equal(await page.$eval('#health', (node) => node.textContent), 'up');
    assert.equal(await page.$$eval('#topology .replica', (nodes) => nodes.length), 1);
    assert.equal(await page.$$eval('#topology .rank', (nodes) => nodes.length), 1);
    const before = await chartSeries(page);

    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const runs = Array.from({ length: 4 }, (_, i) => client.completions.create({ model: 'tiny-moe', prompt: `the robot reads book ${i}`, max_tokens: 48, temperature: 0, ignore_eos: true } as OpenAI.Completions.CompletionCreateParamsNonStreaming));
    await Promise.all(runs);
    await waitFor('a throughput point above zero', async () => (await chartSeries(page)).throughput.some((value) => value > 0));
    const after = await chartSeries(page);
    assert.ok(after.lengths.every((length, i) => length > before.lengths[i]!), `series grew: ${before.lengths} → ${after.lengths}`);
    assert.ok(after.heatCells >= 2, `expert heat map cells: ${after.heatCells}`);
    assert.equal(await page.$eval('#no-experts', (node) => (node as unknown as { hidden: boolean }).hidden), true);
    // The totals are those of the dashboard's latest sample: the one that first showed throughput may predate the last requests' end.
    const totals = (): Promise<string> => page.$eval('#totals', (node) => node.textContent ?? '');
    const allFour = /^4 completion requests · \d+ prompt tokens · 192 generated tokens/;
    await waitFor('the totals of all four requests', async () => allFour.test(await totals()), 10_000).catch(() => undefined);
    assert.match(await totals(), allFour);

    const png = await page.screenshot({ type: 'png', fullPage: true });
    writeFileSync(join(dir, 'dashboard.png'), png);
    const ink = await screenshotInk(page, png);
    t.diagnostic(`screenshot ${join(dir, 'dashboard.png')}: ${(100 * ink.inked).toFixed(1)}% inked, ${ink.colours} colours`);
    assert.ok(ink.inked > 0.05 && ink.colours > 50, `screenshot looks blank: ${JSON.stringify(ink)}`);
    assert.deepEqual(problems, []);
  } finally {
    await headless.close();
    await server.close();
    if (process.env.TESSERA_KEEP_SCREENSHOT !== '1') rmSync(dir, { recursive: true, force: true });
  }
});
