/**
 * The SwiGLU MLP of a shared stage (shared-stage.ts): gate/up rows with
 * silu · up in one shared step, then down rows over every input in another.
 */
import type { FeedForward } from './feed-forward.js';
import type { ScratchLease } from './scratch-buffers.js';
import type { RowSharing, SharedWeight } from './shared-stage.js';

export class SharedFeedForward implements FeedForward {
  constructor(
    private readonly rows: RowSharing,
    /** [intermediateSize, hiddenSize], this rank's rows held */
    private readonly gate: SharedWeight,
    /** [intermediateSize, hiddenSize], the same rows held as gate */
    private readonly up: SharedWeight,
    /** [hiddenSize, intermediateSize], this rank's rows held */
    private readonly down: SharedWeight,
  ) {}

  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array> {
    const intermediate = this.gate.shape[0]!;
    const hidden = this.down.shape[0]!;
    /** [numTokens, intermediateSize] */
    const activated = this.rows.share([this.gate.held, this.up.held], x, numTokens, this.gate.heldBegin, intermediate, scratch?.take('gate', numTokens * intermediate) ?? new Float32Array(numTokens * intermediate));
    /** [numTokens, hiddenSize] */
    const out = scratch?.take('projected', numTokens * hidden) ?? new Float32Array(numTokens * hidden);
    return Promise.resolve(this.rows.share([this.down.held], activated, numTokens, this.down.heldBegin, hidden, out));
  }
}
