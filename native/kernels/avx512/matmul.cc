#define PG_ISA_AVX512
#include "../vec.h"
#include "../kernels.h"
#include "../../threadpool.h"

namespace pg {
namespace avx512 {
#include "../impl/matmul.inc"
}  // namespace avx512
}  // namespace pg
