#define PG_ISA_AVX2
#include "../vec.h"
#include "../kernels.h"
#include "../../threadpool.h"

namespace pg {
namespace avx2 {
#include "../impl/ops.inc"
}  // namespace avx2
}  // namespace pg
