/**
 * Entry of a locally forked rank: `node worker-main.js --join HOST:PORT`,
 * with the token in TESSERA_JOIN_TOKEN so it never shows in process lists.
 */
import { parseArgs } from 'node:util';
import { isTesseraError } from '../core/errors.js';
import { runWorker } from './worker.js';

const { values } = parseArgs({ options: { join: { type: 'string' } } });
try {
  const quiet = process.env.TESSERA_WORKER_QUIET === '1';
  await runWorker({ join: values.join ?? '', token: process.env.TESSERA_JOIN_TOKEN ?? '', log: quiet ? () => undefined : undefined });
  process.exit(0);
} catch (error) {
  const text = isTesseraError(error) ? `error ${error.code}: ${error.message}` : String(error);
  process.stderr.write(`tessera worker: ${text}\n`);
  process.exit(1);
}
