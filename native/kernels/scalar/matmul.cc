#define PG_ISA_SCALAR
#include "../vec.h"
#include "../kernels.h"
#include "../quant_dot.h"
#include "../../quant/quantize.h"
#include "../../threadpool.h"

namespace pg {
namespace scalar {
#include "../impl/matmul.inc"
}  // namespace scalar
}  // namespace pg
