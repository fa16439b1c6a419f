/**
 * The collectives expert parallelism asks for (ExpertParallelGroup in
 * src/model/moe-expert-parallel.ts) over a Communicator: all-to-all of
 * float32 messages and an all-gather. The experts of a stage spread over
 * that stage's ranks.
 */
import type { Communicator } from './collectives.js';
import { asFloats, floatBytes } from './transport.js';

export class ExpertGroup {
  constructor(private readonly communicator: Communicator) {}

  get size(): number {
    return this.communicator.size;
  }

  get rank(): number {
    return this.communicator.index;
  }

  /** parts[j] goes to member j; returns what each member sent here, in group order. */
  async allToAll(parts: readonly Float32Array[]): Promise<Float32Array[]> {
    return (await this.communicator.allToAll(parts.map(floatBytes))).map(asFloats);
  }

  async allGather(mine: Float32Array): Promise<Float32Array[]> {
    return (await this.communicator.allGather(floatBytes(mine))).map(asFloats);
  }
}
