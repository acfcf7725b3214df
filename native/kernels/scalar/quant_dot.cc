#define PG_ISA_SCALAR
#include "../quant_dot.h"
#include "../../threadpool.h"
#include "../../quant/quantize.h"

#include <cstdint>
#include <cstring>

namespace pg {
namespace scalar {
#define PG_QDOT_NAME "scalar"
#include "../impl/quant_dot.inc"
}  // namespace scalar
}  // namespace pg
