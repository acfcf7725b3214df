// The shipped addon: what the package uses, and nothing else (lib/native.ts types it). The kernel
// bindings and hooks of the tests live in a separate addon (native/testing/).
#include <napi.h>

#include "bind.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pg::RegisterRuntime(env, exports);
  pg::RegisterMatmul(env, exports);
  pg::RegisterImage(env, exports);
  pg::RegisterModel(env, exports);
  pg::RegisterQuant(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(paligemma, Init)
