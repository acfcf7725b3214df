// Compiled to nothing off arm64: node-gyp builds every target on every architecture.
#if defined(__aarch64__)
#define PG_ISA_NEON
#include "../vec.h"
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

#include <arm_neon.h>

namespace pg {
namespace neon {
#define PG_QDOT_NAME "neon"
#include "../impl/quant_dot.inc"
}  // namespace neon
}  // namespace pg
#endif  // __aarch64__
