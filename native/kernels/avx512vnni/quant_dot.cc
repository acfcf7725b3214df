// The AVX-512 kernels with vpdpbusd: compiled with the avx512 flags plus -mavx512vnni.
#define PG_ISA_AVX512
#define PG_QDOT_VNNI
#include "../vec.h"
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

#include <immintrin.h>

namespace pg {
namespace avx512vnni {
#define PG_QDOT_NAME "avx512vnni"
#include "../impl/quant_dot.inc"
}  // namespace avx512vnni
}  // namespace pg
