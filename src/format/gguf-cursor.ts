/**
 * Sequential little-endian reads from a file descriptor through a window of a
 * few MiB, so a multi-GB GGUF's header parses without loading the file, and a
 * 32000-entry vocabulary costs a handful of read calls.
 */
import { readSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';

const WINDOW_BYTES = 4 << 20;

export class FileCursor {
  /** Absolute file offset of the next byte to read. */
  position = 0;
  private window: Buffer = Buffer.alloc(WINDOW_BYTES);
  private windowStart = 0;
  private windowLength = 0;

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    private readonly path: string,
  ) {}

  get remaining(): number {
    return this.fileSize - this.position;
  }

  /** Index into `this.window` of `length` bytes at the position, which then advances. */
  private take(length: number): number {
    const end = this.position + length;
    if (end > this.fileSize) {
      throw new TesseraError(
        'TESSERA_ERR_TRUNCATED',
        `${this.path}: the GGUF header ends past the end of the file (needs byte ${end}, the file has ${this.fileSize}); the file is truncated; download it again`,
      );
    }
    if (this.position < this.windowStart || end > this.windowStart + this.windowLength) this.refill(length);
    const index = this.position - this.windowStart;
    this.position = end;
    return index;
  }

  private refill(length: number): void {
    if (length > this.window.length) this.window = Buffer.alloc(length);
    const want = Math.min(this.window.length, this.fileSize - this.position);
    let filled = 0;
    while (filled < want) {
      const n = readSync(this.fd, this.window, filled, want - filled, this.position + filled);
      if (n === 0) break;
      filled += n;
    }
    this.windowStart = this.position;
    this.windowLength = filled;
    if (filled < length) {
      throw new TesseraError('TESSERA_ERR_TRUNCATED', `${this.path}: the file ended while reading its header; the file is truncated; download it again`);
    }
  }

  u8(): number {
    return this.window[this.take(1)];
  }
  i8(): number {
    return this.window.readInt8(this.take(1));
  }
  u16(): number {
    return this.window.readUInt16LE(this.take(2));
  }
  i16(): number {
    return this.window.readInt16LE(this.take(2));
  }
  u32(): number {
    return this.window.readUInt32LE(this.take(4));
  }
  i32(): number {
    return this.window.readInt32LE(this.take(4));
  }
  f32(): number {
    return this.window.readFloatLE(this.take(4));
  }
  f64(): number {
    return this.window.readDoubleLE(this.take(8));
  }
  u64(): bigint {
    return this.window.readBigUInt64LE(this.take(8));
  }
  i64(): bigint {
    return this.window.readBigInt64LE(this.take(8));
  }

  /** A uint64 that must fit a JS number (counts, lengths, offsets); `what` names it in errors. */
  count(what: string): number {
    const value = this.u64();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${this.path}: ${what} is ${value}, which no real file has; the file is corrupt or not a GGUF file`);
    }
    return Number(value);
  }

  /** A GGUF string: uint64 byte length, then UTF-8 bytes. */
  string(): string {
    const at = this.position;
    const length = this.count('a string length');
    if (length > this.fileSize) {
      throw new TesseraError(
        'TESSERA_ERR_BAD_FORMAT',
        `${this.path}: the string at byte ${at} claims ${length} bytes, more than the whole file; the file is corrupt or not a GGUF file`,
      );
    }
    if (length === 0) return '';
    const index = this.take(length);
    return this.window.toString('utf8', index, index + length);
  }
}
