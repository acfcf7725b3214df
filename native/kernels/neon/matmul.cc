// Compiled to nothing off arm64: node-gyp builds every target on every architecture.
#if defined(__aarch64__)
#define PG_ISA_NEON
#include "../vec.h"
#include "../kernels.h"
#include "../quant_dot.h"
#include "../../quant/quantize.h"
#include "../../threadpool.h"

namespace pg {
namespace neon {
#include "../impl/matmul.inc"
}  // namespace neon
}  // namespace pg
#endif  // __aarch64__
