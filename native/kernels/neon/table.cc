#include "../kernels.h"

namespace pg {
namespace neon {
#define PG_ISA_NAME "neon"
#include "../table.inc"
}  // namespace neon
}  // namespace pg
