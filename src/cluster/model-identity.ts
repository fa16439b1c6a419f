/**
 * A model's identity for the mesh handshake: SHA-256 over its format, its
 * config and its tensor index (every tensor's name, dtype and shape). The
 * coordinator sends it in each plan; a rank computes it from its own copy of
 * the file and refuses the plan (TESSERA_ERR_MODEL_MISMATCH) when they
 * differ, before any tensor is read: a worker pointed at another model, or
 * another quantization of it, would otherwise compute garbage in step.
 * Weights' bytes are not hashed (that would read the whole file); two files
 * of one index and config but different weights are not told apart.
 */
import { createHash } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import { openModelFiles, type ModelFiles } from '../engine/model-files.js';

export function modelIdentity(files: Pick<ModelFiles, 'format' | 'config' | 'store'>): string {
  const tensors = files.store.list().map(({ name, dtype, shape }) => [name, dtype, shape]);
  const text = JSON.stringify({ format: files.format, config: files.config, tensors }, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value));
  return createHash('sha256').update(text).digest('hex');
}

/** The identity of the model at `path` (opens and closes it). */
export function modelIdentityOf(path: string, tokenizerPath?: string): string {
  const files = openModelFiles(path, { tokenizerPath });
  try {
    return modelIdentity(files);
  } finally {
    files.store.close();
  }
}

export function checkModelIdentity(files: Pick<ModelFiles, 'format' | 'config' | 'store' | 'path'>, expected: string): void {
  const actual = modelIdentity(files);
  if (actual !== expected) {
    throw new TesseraError(
      'TESSERA_ERR_MODEL_MISMATCH',
      `this worker's ${files.path} is not the coordinator's model (identity ${actual.slice(0, 12)}…, the coordinator's ${expected.slice(0, 12)}…); give every node the same model file`,
    );
  }
}
