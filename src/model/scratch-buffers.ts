/**
 * Named, grow-only float buffers that a forward pass reuses layer after
 * layer and step after step for its temporaries (normed hidden states, q/k/v,
 * gate/up). Without them a 16-sequence decode step allocates ~50 MB of
 * output arrays and a 256-token prefill ~800 MB, and V8 answers that
 * external-memory churn with a full mark-compact about once per step, whose
 * marking threads take cores from the kernels.
 *
 * Only one pass may use them at a time: a pass that finds them leased (a
 * pipeline stage running two micro-batches) allocates as before.
 */
export class ScratchBuffers {
  private readonly buffers = new Map<string, Float32Array>();
  private leased = false;

  /** The buffers for one pass, or undefined while another pass holds them. */
  lease(): ScratchLease | undefined {
    if (this.leased) return undefined;
    this.leased = true;
    return {
      take: (name, length) => this.take(name, length),
      release: () => {
        this.leased = false;
      },
    };
  }

  private take(name: string, length: number): Float32Array {
    let buffer = this.buffers.get(name);
    if (!buffer || buffer.length < length) {
      buffer = new Float32Array(length);
      this.buffers.set(name, buffer);
    }
    return buffer.subarray(0, length);
  }
}

export interface ScratchLease {
  /**
   * [length] floats under `name`, with stale contents: valid until the same
   * name is taken again, so a name stands for one temporary of a layer.
   */
  take(name: string, length: number): Float32Array;
  release(): void;
}
