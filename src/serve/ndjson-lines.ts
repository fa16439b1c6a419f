/**
 * Splits a text stream into whole lines (NDJSON): a line is handed out only
 * once its newline has arrived. The stream's bytes are decoded by the socket
 * (`setEncoding('utf8')`, which never splits a character), so this sees text.
 */
export class NdjsonLines {
  private partial = '';

  /** The complete, non-empty lines this piece of text finished. */
  push(text: string): string[] {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    return lines.filter((line) => line.length > 0);
  }
}
