#include "../kernels.h"

namespace pg {
namespace neon {

const KernelTable* table() {
  static const KernelTable t = {"neon"};
  return &t;
}

}  // namespace neon
}  // namespace pg
