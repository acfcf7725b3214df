#include "bind.h"

namespace pg {

void RegisterImage(Napi::Env, Napi::Object) {}

}  // namespace pg
