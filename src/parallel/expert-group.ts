/**
 * The collectives expert parallelism asks for (ExpertParallelGroup in
 * src/model/moe-expert-parallel.ts): all-to-all of float32 messages and an
 * all-gather, over a Communicator, or natively (synchronous, no event-loop
 * turn) when the stage has a native group of the same members. The experts
 * of a stage spread over that stage's ranks.
 */
import type { Communicator } from './collectives.js';
import type { NativeCollectiveGroup } from './native-group.js';
import { asFloats, floatBytes } from './transport.js';

export class ExpertGroup {
  constructor(
    private readonly communicator: Communicator,
    /** The stage's native group (its members in the communicator's order), when the mesh has a native plane. */
    private readonly native?: NativeCollectiveGroup,
  ) {}

  get size(): number {
    return this.communicator.size;
  }

  get rank(): number {
    return this.communicator.index;
  }

  /** parts[j] goes to member j; returns what each member sent here, in group order. */
  async allToAll(parts: readonly Float32Array[]): Promise<Float32Array[]> {
    if (this.native) return this.native.allToAll(parts.map(floatBytes)).map(asFloats);
    return (await this.communicator.allToAll(parts.map(floatBytes))).map(asFloats);
  }

  async allGather(mine: Float32Array): Promise<Float32Array[]> {
    if (this.native) return this.native.allGather(floatBytes(mine)).map(asFloats);
    return (await this.communicator.allGather(floatBytes(mine))).map(asFloats);
  }
}
