#include "../kernels.h"

namespace pg {
namespace scalar {

const KernelTable* table() {
  static const KernelTable t = {"scalar"};
  return &t;
}

}  // namespace scalar
}  // namespace pg
