/**
 * A server's certificate and key (PEM), read and checked as a pair before
 * anything listens: a missing file, a key that does not match the
 * certificate, or PEM that does not parse is a coded error naming the flag.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { TesseraError } from '../core/errors.js';

export interface TlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
}

/** Both paths or neither; undefined for neither (plain HTTP). */
export function readTlsFiles(certPath: string | undefined, keyPath: string | undefined): TlsFiles | undefined {
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'give --tls-cert and --tls-key together (a PEM certificate chain and its private key)');
  const files = { cert: readPem('--tls-cert', certPath), key: readPem('--tls-key', keyPath) };
  try {
    createSecureContext(files);
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_TLS', `--tls-cert ${certPath} and --tls-key ${keyPath} do not make a usable pair (${(error as Error).message}); give the PEM certificate and the private key it was issued for`, { cause: error });
  }
  return files;
}
