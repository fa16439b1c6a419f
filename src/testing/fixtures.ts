/**
 * Access to ../shared/models for tests. When the folder is absent a test
 * skips with a visible reason, unless TESSERA_REQUIRE_FIXTURES=1 (CI), where
 * a missing fixture fails the test instead.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const SHARED_MODELS = process.env.TESSERA_SHARED_MODELS ?? join(projectRoot, '..', 'shared', 'models');

/** Path of a fixture under shared/models, or undefined after skipping the test. */
export function fixture(t: TestContext, relativePath: string): string | undefined {
  const path = join(SHARED_MODELS, relativePath);
  if (existsSync(path)) return path;
  if (process.env.TESSERA_REQUIRE_FIXTURES === '1') {
    throw new Error(`fixture ${path} is missing and TESSERA_REQUIRE_FIXTURES=1`);
  }
  t.skip(`fixture ${path} is absent (shared/models not found)`);
  return undefined;
}

export { projectRoot };
