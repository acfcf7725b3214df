#include "../kernels.h"

namespace pg {
namespace avx512 {

const KernelTable* table() {
  static const KernelTable t = {"avx512"};
  return &t;
}

}  // namespace avx512
}  // namespace pg
