#include "../kernels.h"

namespace pg {
namespace avx2 {

const KernelTable* table() {
  static const KernelTable t = {"avx2"};
  return &t;
}

}  // namespace avx2
}  // namespace pg
