/**
 * Where a KV ring's writer puts its next payload. Positions are byte counts
 * that only grow (`written` by the writer, `acked` by the reader, who acks
 * each payload's end); a payload's offset is its position modulo the ring.
 * A payload that would cross the ring's end skips the rest of the ring and
 * starts at 0, the skipped bytes counted as written (and read once the
 * reader has everything written before them: nobody reads them).
 *
 * When the reader has everything written, the next payload starts again at
 * the ring's beginning, wherever the last one ended. Rows arrive in bursts
 * (a layer's rows every few tens of ms while a prompt is prefilled) and the
 * reader keeps up, so the ring's first few MiB are used over and over, warm
 * in the caches, instead of every payload going to the next place of a
 * 128 MiB ring, each byte of which comes round every ~25 s of transfers. On
 * this virtual machine, pages left alone for 15-40 s are slow at their next
 * use (copies into them ran at 6 GB/s against 16), and tmpfs here
 * (shmem_enabled "never") gives a ring no huge pages.
 */

export class RingPlacement {
  /** The writer's position: the end of its last payload, which the reader acks. */
  written = 0;
  /** The latest skipped stretch of positions, [from, to). */
  private skipped = { from: 0, to: 0 };

  constructor(readonly ringBytes: number) {}

  /**
   * Where `size` bytes (8-byte aligned) go: their offset, and the position of
   * their end, which the reader acks; undefined when the ring has no room for
   * them now (nothing changes).
   */
  place(acked: number, size: number): { offset: number; end: number } | undefined {
    const aligned = Math.ceil(size / 8) * 8;
    if (aligned > this.ringBytes) return undefined;
    const read = acked >= this.skipped.from ? Math.max(acked, this.skipped.to) : acked;
    const at = this.written % this.ringBytes;
    const empty = read >= this.written;
    const skip = at !== 0 && (empty || at + aligned > this.ringBytes) ? this.ringBytes - at : 0;
    if (!empty && this.written + skip + aligned - read > this.ringBytes) return undefined;
    if (skip > 0) this.skipped = { from: this.written, to: this.written + skip };
    this.written += skip + aligned;
    return { offset: skip > 0 ? 0 : at, end: this.written };
  }
}
