/**
 * Choosing a backend: `--backend native|reference|webgpu|auto`. Auto takes the
 * native addon when it loaded and otherwise falls back to the reference
 * backend, saying once per process why and how to get the fast one; the
 * GPU is used only when asked for (`webgpu`).
 */
import type { Backend } from '../backend.js';
import { TesseraError } from '../../core/errors.js';
import { ReferenceBackend } from '../reference/reference-backend.js';
import { NATIVE_BUILD_HINT, loadNativeAddon } from './native-addon.js';
import { NativeBackend, type NativeBackendOptions } from './native-backend.js';
import { WebGpuBackend } from '../webgpu/webgpu-backend.js';

export type BackendChoice = 'auto' | 'native' | 'reference' | 'webgpu';

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'reference', 'webgpu'];

let warned = false;

/** The fallback notice, printed at most once per process. */
function warnFallback(reason: string, warn: (message: string) => void): void {
  if (warned) return;
  warned = true;
  warn(
    `tessera: the native CPU backend is not built, so models run on the reference backend, which is many times slower.\n` +
      `  To get the fast one, ${NATIVE_BUILD_HINT}.\n  (${reason})`,
  );
}

export function createBackend(
  choice: BackendChoice = 'auto',
  options: NativeBackendOptions = {},
  warn: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
): Backend {
  if (choice === 'reference') return new ReferenceBackend();
  if (choice === 'native') return new NativeBackend(options);
  if (choice === 'webgpu') return new WebGpuBackend();
  if (choice !== 'auto') {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `unknown backend '${String(choice)}'; use one of ${BACKEND_CHOICES.join(', ')}`);
  }
  const load = loadNativeAddon();
  if (!load.ok) {
    warnFallback(load.reason, warn);
    return new ReferenceBackend();
  }
  return new NativeBackend(options);
}
