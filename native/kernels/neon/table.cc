// Compiled to nothing off arm64: node-gyp builds every target on every architecture.
#if defined(__aarch64__)
#include "../kernels.h"

namespace pg {
namespace neon {
#define PG_ISA_NAME "neon"
#include "../table.inc"
}  // namespace neon
}  // namespace pg
#endif  // __aarch64__
