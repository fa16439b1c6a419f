// What the running CPU can do: which kernel variant to use and how many
// physical cores there are (the default thread count).
#pragma once
#include <string>
#include <vector>
#include "kernels/kernel-table.h"

namespace tessera {

/** Variants this CPU can run, best first (the last is always the portable one). */
std::vector<const KernelTable*> supportedKernelTables();

/** The best supported variant, or the one named by `name` (throws std::runtime_error if unsupported). */
const KernelTable* selectKernelTable(const std::string& name);

/** Physical cores (hyper-threads counted once); at least 1. */
int physicalCoreCount();

}  // namespace tessera
