#include <cstring>

#include "../cpu/features.h"
#include "quant_dot.h"

namespace pg {

const QuantKernels* quant_kernels_for(const char* variant) {
  if (std::strcmp(variant, "scalar") == 0) return scalar::quant_kernels();
#if defined(__x86_64__) || defined(_M_X64)
  if (std::strcmp(variant, "avx2") == 0) return avx2::quant_kernels();
  if (std::strcmp(variant, "avx512") == 0)
    return cpu_features().avx512vnni ? avx512vnni::quant_kernels() : avx512::quant_kernels();
#endif
#if defined(__aarch64__)
  if (std::strcmp(variant, "neon") == 0)
    return cpu_features().dotprod ? neon_dotprod::quant_kernels() : neon::quant_kernels();
#endif
  return nullptr;
}

}  // namespace pg
