#include "../kernels.h"

namespace pg {
namespace avx512 {
#define PG_ISA_NAME "avx512"
#include "../table.inc"
}  // namespace avx512
}  // namespace pg
