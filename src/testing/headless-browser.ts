/**
 * Debian's Chromium, headless, driven by puppeteer-core (which downloads no
 * browser of its own). With no Chromium the test is skipped with the
 * reason, unless TESSERA_REQUIRE_BROWSER=1 (as in CI, which installs it),
 * where that fails instead.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import puppeteer, { type Browser } from 'puppeteer-core';

const CANDIDATES = [process.env.TESSERA_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((path): path is string => Boolean(path));

// Background networking, sync and component updates would reach out to the internet, which this machine (and CI) cannot.
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

export interface HeadlessBrowser {
  readonly browser: Browser;
  close(): Promise<void>;
}

export async function launchBrowser(t: TestContext): Promise<HeadlessBrowser | undefined> {
  const executablePath = CANDIDATES.find((path) => existsSync(path));
  if (!executablePath) {
    const reason = 'no Chromium (apt-get install chromium, or set TESSERA_CHROMIUM)';
    if (process.env.TESSERA_REQUIRE_BROWSER === '1') throw new Error(`${reason}; TESSERA_REQUIRE_BROWSER=1 requires it`);
    t.skip(reason);
    return undefined;
  }
  const profile = mkdtempSync(join(tmpdir(), 'tessera-chromium-'));
  const browser = await puppeteer.launch({ executablePath, args: [...FLAGS, `--user-data-dir=${profile}`], headless: true, protocolTimeout: 120_000 });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => undefined);
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
