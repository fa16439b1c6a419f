#include "bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace tessera {

double measureTriadBandwidth(ThreadPool& pool, size_t bytesPerArray, int repeats) {
  const size_t n = bytesPerArray / sizeof(double);
  auto allocate = [n] {
    void* p = std::aligned_alloc(64, (n * sizeof(double) + 63) / 64 * 64);
    if (p == nullptr) throw std::runtime_error("out of memory for the bandwidth test");
    return std::unique_ptr<double, decltype(&std::free)>(static_cast<double*>(p), &std::free);
  };
  auto a = allocate(), b = allocate(), c = allocate();
  const int chunks = pool.threads() * 4;
  const size_t chunk = (n + chunks - 1) / chunks;
  // First touch on the threads that will stream the pages.
  pool.run(chunks, [&](int i) {
    for (size_t j = i * chunk; j < std::min(n, (i + 1) * chunk); j++) {
      a.get()[j] = 0.0;
      b.get()[j] = 1.0;
      c.get()[j] = 2.0;
    }
  });
  double best = 0.0;
  for (int r = 0; r < repeats; r++) {
    const auto start = std::chrono::steady_clock::now();
    pool.run(chunks, [&](int i) {
      double* __restrict pa = a.get();
      const double* __restrict pb = b.get();
      const double* __restrict pc = c.get();
      for (size_t j = i * chunk; j < std::min(n, (i + 1) * chunk); j++) pa[j] = pb[j] + 3.0 * pc[j];
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 3.0 * static_cast<double>(n * sizeof(double)) / seconds / 1e9);
  }
  return best;
}

}  // namespace tessera
