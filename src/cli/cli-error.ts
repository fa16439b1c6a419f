/** How the CLI reports failures: one coded line, a stack only with --verbose. */
import { isTesseraError } from '../core/errors.js';

export function reportError(error: unknown, verbose: boolean): number {
  if (isTesseraError(error)) {
    process.stderr.write(`error ${error.code}: ${error.message}\n`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error TESSERA_ERR_INTERNAL: ${message} (rerun with --verbose for details, and report it)\n`);
  }
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  return 1;
}
