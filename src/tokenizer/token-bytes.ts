/**
 * How a vocabulary piece turns into output bytes, per vocabulary family.
 * SentencePiece pieces write a space as ▁ and raw bytes as `<0xAB>`;
 * byte-level BPE (GPT-2 family) writes every byte as one printable code point.
 */

const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export type PieceScheme = 'sentencepiece' | 'byte-level' | 'plain';

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onward. */
function buildByteLevelTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const byteToChar: string[] = new Array(256);
  const charToByte = new Map<string, number>();
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
    const char = String.fromCodePoint(printable ? byte : next++);
    byteToChar[byte] = char;
    charToByte.set(char, byte);
  }
  return { byteToChar, charToByte };
}

const byteLevel = buildByteLevelTables();

/** The 256 code points GPT-2 uses for the bytes 0..255, in byte order. */
export function byteLevelAlphabet(): string[] {
  return [...byteLevel.byteToChar];
}

/** The byte-level spelling of raw text (what a GPT-2 vocabulary stores). */
export function byteLevelEncode(text: string): string {
  let out = '';
  for (const byte of encoder.encode(text)) out += byteLevel.byteToChar[byte];
  return out;
}

/**
 * Bytes of a byte-level piece. A code point outside the byte alphabet (never
 * in a well-formed vocabulary) passes through as its UTF-8 text.
 */
export function byteLevelBytes(piece: string): Uint8Array {
  const bytes: number[] = [];
  for (const char of piece) {
    const byte = byteLevel.charToByte.get(char);
    if (byte !== undefined) bytes.push(byte);
    else bytes.push(...encoder.encode(char));
  }
  return Uint8Array.from(bytes);
}

/** Bytes of a SentencePiece piece: `<0xAB>` is one raw byte when `isByteToken`, ▁ is a space. */
export function sentencePieceBytes(piece: string, isByteToken: boolean): Uint8Array {
  if (isByteToken) {
    const match = BYTE_PIECE.exec(piece);
    if (match) return Uint8Array.of(parseInt(match[1]!, 16));
  }
  return encoder.encode(piece.replaceAll('\u2581', ' '));
}

export function isBytePiece(piece: string): boolean {
  return BYTE_PIECE.test(piece);
}

export function pieceBytes(scheme: PieceScheme, piece: string, isByteToken: boolean): Uint8Array {
  if (piece.length === 0) return EMPTY;
  switch (scheme) {
    case 'sentencepiece':
      return sentencePieceBytes(piece, isByteToken);
    case 'byte-level':
      return byteLevelBytes(piece);
    case 'plain':
      return encoder.encode(piece);
  }
}

export { EMPTY as EMPTY_BYTES };
