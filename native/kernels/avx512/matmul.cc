#define PG_ISA_AVX512
#include "../vec.h"
#include "../kernels.h"
#include "../quant_dot.h"
#include "../../quant/quantize.h"
#include "../../threadpool.h"

namespace pg {
namespace avx512 {
#include "../impl/matmul.inc"
}  // namespace avx512
}  // namespace pg
