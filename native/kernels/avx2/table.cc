#include "../kernels.h"

namespace pg {
namespace avx2 {
#define PG_ISA_NAME "avx2"
#include "../table.inc"
}  // namespace avx2
}  // namespace pg
