#define PG_ISA_AVX512
#include "../vec.h"
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace pg {
namespace avx512 {
#define PG_QDOT_NAME "avx512"
#include "../impl/quant_dot.inc"
}  // namespace avx512
}  // namespace pg
