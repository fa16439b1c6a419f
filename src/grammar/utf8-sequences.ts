/**
 * A code-point range as UTF-8 byte ranges: the automaton reads bytes (tokens
 * are byte strings that may split a character), so a class such as [^"\\]
 * becomes a few alternatives of byte-range sequences. Surrogates (U+D800 to
 * U+DFFF) are never produced: they are not valid UTF-8.
 */
import type { CodeRange } from './grammar.js';

/** One alternative: byte ranges to match one after another. */
export type ByteSequence = CodeRange[];

const LENGTH_LIMITS = [0x7f, 0x7ff, 0xffff, 0x10ffff];
const SURROGATES: CodeRange = [0xd800, 0xdfff];

/** Byte-range sequences that together match exactly the UTF-8 encodings of [first, last]. */
export function utf8Sequences(first: number, last: number): ByteSequence[] {
  const out: ByteSequence[] = [];
  for (const [a, b] of withoutSurrogates(first, last)) splitByLength(a, b, out);
  return out;
}

function withoutSurrogates(first: number, last: number): CodeRange[] {
  const [s, e] = SURROGATES;
  if (last < s || first > e) return [[first, last]];
  const parts: CodeRange[] = [];
  if (first < s) parts.push([first, s - 1]);
  if (last > e) parts.push([e + 1, last]);
  return parts;
}

/** Pieces whose encodings all have the same length. */
function splitByLength(first: number, last: number, out: ByteSequence[]): void {
  let start = first;
  for (const limit of LENGTH_LIMITS) {
    if (start > last) return;
    if (start <= limit) {
      const end = Math.min(last, limit);
      splitAligned(start, end, out);
      start = end + 1;
    }
  }
}

/**
 * Splits [first, last] (one encoded length) until the lower bytes of each
 * piece span their whole continuation range, so the piece is a product of
 * byte ranges: byte i ranges over [encode(first)[i], encode(last)[i]].
 */
function splitAligned(first: number, last: number, out: ByteSequence[]): void {
  const length = encodedLength(first);
  for (let i = 1; i < length; i++) {
    const mask = (1 << (6 * i)) - 1;
    if ((first & ~mask) === (last & ~mask)) continue;
    if ((first & mask) !== 0) {
      splitAligned(first, first | mask, out);
      splitAligned((first | mask) + 1, last, out);
      return;
    }
    if ((last & mask) !== mask) {
      splitAligned(first, (last & ~mask) - 1, out);
      splitAligned(last & ~mask, last, out);
      return;
    }
  }
  const low = encode(first);
  const high = encode(last);
  out.push(low.map((byte, i): CodeRange => [byte, high[i]]));
}

function encodedLength(codePoint: number): number {
  if (codePoint <= 0x7f) return 1;
  if (codePoint <= 0x7ff) return 2;
  if (codePoint <= 0xffff) return 3;
  return 4;
}

function encode(codePoint: number): number[] {
  const length = encodedLength(codePoint);
  if (length === 1) return [codePoint];
  const bytes: number[] = [];
  let rest = codePoint;
  for (let i = length - 1; i > 0; i--) {
    bytes.unshift(0x80 | (rest & 0x3f));
    rest >>= 6;
  }
  const lead = [0, 0, 0xc0, 0xe0, 0xf0][length];
  bytes.unshift(lead | rest);
  return bytes;
}
