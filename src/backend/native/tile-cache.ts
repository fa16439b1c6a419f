/**
 * Where the native backend saves packed tiles between loads
 * (NativeBackendOptions.tileCache, `--tile-cache DIR`,
 * TESSERA_TILE_CACHE): a first load packs as usual and saves each weight's
 * tiles to a file; later loads map those files from the page cache instead
 * of packing into fresh memory, and processes on one host share them.
 *
 * A file's name hashes the model file's identity (real path, size,
 * modification time, inode), the tensor's place and shape and the tile
 * format version, so a changed model, or another build's layout, misses
 * instead of being misread; the addon also checks the file's header and size.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TesseraError } from '../../core/errors.js';

export interface TileFileKey {
  path: string;
  byteOffset: number;
  dtype: string;
  rows: number;
  cols: number;
}

export class TileCache {
  private warned = false;

  /** Creates `directory` if needed; throws TESSERA_ERR_INVALID_ARGUMENT when it cannot. */
  constructor(
    readonly directory: string,
    private readonly formatVersion: number,
    private readonly warn: (message: string) => void = (message) => process.stderr.write(`${message}\n`),
  ) {
    try {
      mkdirSync(directory, { recursive: true });
    } catch (error) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `cannot use ${directory} as the tile cache: ${(error as Error).message}`);
    }
  }

  /** The tile file of a tensor of the model file at `key.path`. */
  fileFor(key: TileFileKey): string {
    const real = realpathSync(key.path);
    const { size, mtimeMs, ino } = statSync(real);
    const identity = JSON.stringify([real, size, mtimeMs, ino, key.byteOffset, key.dtype, key.rows, key.cols, this.formatVersion]);
    return join(this.directory, `${createHash('sha256').update(identity).digest('hex').slice(0, 40)}.tiles`);
  }

  /** After a weight was packed anew: says once per cache when its tiles could not be saved. */
  checkSaved(file: string): void {
    if (this.warned || existsSync(file)) return;
    this.warned = true;
    this.warn(`tessera: could not save packed tiles in the tile cache ${this.directory} (full or not writable?); loading goes on without it`);
  }
}
