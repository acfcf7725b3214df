#define PG_ISA_NEON
#include "../vec.h"
#include "../kernels.h"
#include "../../threadpool.h"

namespace pg {
namespace neon {
#include "../impl/matmul.inc"
}  // namespace neon
}  // namespace pg
