#define PG_ISA_AVX2
#include "../vec.h"
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace pg {
namespace avx2 {
#define PG_QDOT_NAME "avx2"
#include "../impl/quant_dot.inc"
}  // namespace avx2
}  // namespace pg
