// The kernel table: one instance per SIMD variant, chosen once from the CPU's features.
// Model code (native/model/) calls kernels only through a KernelTable pointer.
//
// Each variant lives in its own directory (native/kernels/<isa>/) and is compiled with that
// ISA's flags. Code in those directories must stay inside its own namespace and must not
// instantiate templates or inline functions shared with other translation units (std::function,
// std::vector members, ...): the linker keeps one copy of such code, possibly the AVX-512 one.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

struct KernelTable {
  const char* name;  // "scalar", "avx2", "avx512", "neon"
};

namespace scalar { const KernelTable* table(); }
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 { const KernelTable* table(); }
namespace avx512 { const KernelTable* table(); }
#endif
#if defined(__aarch64__)
namespace neon { const KernelTable* table(); }
#endif

}  // namespace pg
