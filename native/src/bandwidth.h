// This machine's memory bandwidth, measured the STREAM way (triad
// a = b + s·c over arrays far larger than the caches), so benchmarks can
// report kernels as a fraction of the physical limit measured in the same run.
#pragma once
#include <cstddef>
#include "thread-pool.h"

namespace tessera {

/** Best of `repeats` triads over three arrays of `bytesPerArray`; GB/s counting 3 arrays per pass. */
double measureTriadBandwidth(ThreadPool& pool, size_t bytesPerArray, int repeats);

}  // namespace tessera
