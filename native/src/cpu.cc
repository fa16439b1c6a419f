#include "cpu.h"

#include <fstream>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>

namespace tessera {

std::vector<const KernelTable*> supportedKernelTables() {
  std::vector<const KernelTable*> tables;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) tables.push_back(kernelTableAvx512());
  if (avx2) tables.push_back(kernelTableAvx2());
#endif
#if defined(__aarch64__)
  tables.push_back(kernelTableNeon());
#endif
  tables.push_back(kernelTableScalar());
  return tables;
}

const KernelTable* selectKernelTable(const std::string& name) {
  const std::vector<const KernelTable*> tables = supportedKernelTables();
  if (name.empty() || name == "auto") return tables.front();
  std::string known;
  for (const KernelTable* table : tables) {
    if (name == table->isa) return table;
    known += known.empty() ? table->isa : std::string(", ") + table->isa;
  }
  throw std::runtime_error("this CPU cannot run the '" + name + "' kernels; it supports: " + known);
}

int physicalCoreCount() {
  // Linux: count distinct (package, core) pairs of the online CPUs.
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned logical = std::thread::hardware_concurrency();
  for (unsigned cpu = 0; cpu < logical; cpu++) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(base + "physical_package_id");
    std::ifstream core(base + "core_id");
    std::string packageId, coreId;
    if (!(package >> packageId) || !(core >> coreId)) {
      cores.clear();
      break;
    }
    cores.insert({packageId, coreId});
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  return logical > 0 ? static_cast<int>(logical) : 1;
}

}  // namespace tessera
