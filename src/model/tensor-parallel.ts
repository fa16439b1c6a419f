/**
 * The collectives a model layer calls at its boundaries. A model is written
 * once; with one rank these are identities, with several they are the
 * mesh's collectives (DESIGN §3).
 */
export interface TensorParallelGroup {
  readonly size: number;
  readonly rank: number;
  /**
   * Sums the partial results of a row-parallel matrix multiply across ranks,
   * finishing the canonical reduction tree (DESIGN §4), so the sum equals the
   * unsplit result bit for bit. The sum is written over `partial` (and
   * returned), so callers pass a temporary they no longer need.
   */
  allReduce(partial: Float32Array): Promise<Float32Array>;
  /** Concatenates each rank's column slice of rows [rows, cols/size] into [rows, cols]. */
  allGatherColumns(slice: Float32Array, rows: number): Promise<Float32Array>;
  /**
   * Where to compute the partial of the next allReduce so the peers read it
   * in place (ranks on one host share memory), or undefined. The sum stays
   * in it; the caller only reads it, and only until the collective after next.
   */
  partialBuffer?(length: number): Float32Array | undefined;
}

export const SINGLE_RANK: TensorParallelGroup = {
  size: 1,
  rank: 0,
  allReduce: async (partial) => partial,
  allGatherColumns: async (slice) => slice,
};
