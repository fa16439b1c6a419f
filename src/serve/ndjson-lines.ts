/** Splits a byte stream into whole lines (NDJSON): a line is handed out only once its newline has arrived. */
export class NdjsonLines {
  private readonly decoder = new TextDecoder('utf-8');
  private partial = '';

  /** The complete, non-empty lines this chunk finished. */
  push(chunk: Uint8Array): string[] {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    return lines.filter((line) => line.length > 0);
  }
}
