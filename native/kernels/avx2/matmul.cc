#define PG_ISA_AVX2
#include "../vec.h"
#include "../kernels.h"
#include "../quant_dot.h"
#include "../../quant/quantize.h"
#include "../../threadpool.h"

namespace pg {
namespace avx2 {
#include "../impl/matmul.inc"
}  // namespace avx2
}  // namespace pg
