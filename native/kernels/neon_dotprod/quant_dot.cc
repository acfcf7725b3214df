// The NEON kernels with vdotq_s32: compiled with -march=armv8.2-a+dotprod; to nothing off arm64.
#if defined(__aarch64__)
#define PG_ISA_NEON
#define PG_QDOT_DOTPROD
#include "../vec.h"
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

#include <arm_neon.h>

namespace pg {
namespace neon_dotprod {
#define PG_QDOT_NAME "neon_dotprod"
#include "../impl/quant_dot.inc"
}  // namespace neon_dotprod
}  // namespace pg
#endif  // __aarch64__
