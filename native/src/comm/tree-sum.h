// The cross-rank end of the canonical reduction tree (DESIGN §4,
// src/parallel/reduction-tree.ts): parts [lo, hi) combine as
// sum([lo, mid)) + sum([mid, hi)), mid = lo + (hi - lo) / 2, each partial
// rounded to float32. Built with -ffp-contract=off, so it rounds as the
// TypeScript treeSum does (float adds of floats: JS's double-then-round
// gives the same bits).
#pragma once
#include <cstddef>

namespace tessera::comm {

/** out[i] = tree sum of parts[0..count)[i] for i < length; out may alias any part. */
void treeSum(const float* const* parts, int count, size_t length, float* out);
/** The same sum written to each of outs[0..outCount) (any of which may alias a part): one pass, for pushing a sum to several places. */
void treeSum(const float* const* parts, int count, size_t length, float* const* outs, int outCount);

}  // namespace tessera::comm
