#include "../kernels.h"

namespace pg {
namespace scalar {
#define PG_ISA_NAME "scalar"
#include "../table.inc"
}  // namespace scalar
}  // namespace pg
