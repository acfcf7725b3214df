#include "bind.h"

namespace pg {

void RegisterOps(Napi::Env, Napi::Object) {}

}  // namespace pg
