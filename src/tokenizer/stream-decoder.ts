/**
 * Incremental detokenization for streaming. Tokens are turned into bytes
 * (Tokenizer.tokenBytes) and text is released only up to the last complete
 * UTF-8 character, so a character split over byte tokens (an emoji as four
 * <0xXX> tokens, or byte-level BPE pieces) never comes out half.
 *
 * Leading-space rule: the concatenated output equals tokenizer.decode(ids)
 * of the same ids. For SentencePiece vocabularies that means one space at
 * the very start of the stream is dropped, as decode drops it. The engine
 * streams only generated ids, and the text of a generation is
 * decode(generated ids), so both agree.
 */
import type { Tokenizer } from './tokenizer.js';

export class StreamDecoder {
  private readonly tokenizer: Tokenizer;
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private pending = new Uint8Array(0);
  private atStart: boolean;

  constructor(tokenizer: Tokenizer) {
    this.tokenizer = tokenizer;
    this.atStart = tokenizer.stripsLeadingSpace;
  }

  /** Text completed by this token: never half a UTF-8 character. */
  push(id: number): string {
    let bytes = this.tokenizer.tokenBytes(id);
    if (this.atStart && bytes.length > 0) {
      this.atStart = false;
      if (bytes[0] === 0x20) bytes = bytes.subarray(1);
    }
    if (bytes.length === 0) return '';
    const joined = new Uint8Array(this.pending.length + bytes.length);
    joined.set(this.pending);
    joined.set(bytes, this.pending.length);
    const end = completeLength(joined);
    this.pending = joined.slice(end);
    return end === 0 ? '' : this.decoder.decode(joined.subarray(0, end));
  }

  /** Whatever is left at the end; an unfinished character comes out as U+FFFD, as decode does. */
  flush(): string {
    const rest = this.pending;
    this.pending = new Uint8Array(0);
    return rest.length === 0 ? '' : this.decoder.decode(rest);
  }
}

/**
 * Length of the prefix of `bytes` that ends on a character boundary. Only a
 * trailing lead byte plus fewer continuation bytes than it announces is held
 * back; invalid sequences pass through (decoded as U+FFFD, like decode).
 */
function completeLength(bytes: Uint8Array): number {
  const length = bytes.length;
  // A UTF-8 character is at most 4 bytes, so the last lead byte is within the last 4.
  for (let back = 1; back <= Math.min(4, length); back++) {
    const byte = bytes[length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? length - back : length;
  }
  return length;
}
