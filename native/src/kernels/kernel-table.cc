// Collects this ISA variant's kernels into its table.
#include "kernel-functions.h"

#ifndef TESSERA_TABLE_GETTER
#error "binding.gyp defines TESSERA_TABLE_GETTER for each variant"
#endif
#define TESSERA_STRINGIFY2(x) #x
#define TESSERA_STRINGIFY(x) TESSERA_STRINGIFY2(x)

namespace tessera {

const KernelTable* TESSERA_TABLE_GETTER() {
  namespace k = TESSERA_ISA_NS;
  static const KernelTable table = {
      TESSERA_STRINGIFY(TESSERA_ISA_NS),
#if defined(TESSERA_AVX512)
      true,
#else
      false,
#endif
      k::quantizeRow,
      k::leavesF32,
      k::leavesF16,
      k::leavesBF16,
      k::leavesQ8_0,
      k::leavesQ4_0,
      k::leavesQ4_K,
      k::leavesQ6_K,
      k::dequantize,
      k::reduceLeaves,
      k::reduceLeavesRows,
      k::tileMatmul,
      k::tileMatmulFloat,
      k::rmsNorm,
      k::siluMul,
      k::add,
      k::attendKvHead,
      k::attendKvHeadF16,
      k::floatsToHalves,
  };
  return &table;
}

}  // namespace tessera
