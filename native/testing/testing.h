// The test addon (paligemma_test.node): kernel bindings and hooks that only tests and benchmarks
// load. Never part of a prebuild; lib/native.ts types it (NativeTestAddon) and loadTestAddon()
// finds it next to the shipped addon.
#pragma once

#include <napi.h>

namespace pg {

void RegisterKernelTests(Napi::Env env, Napi::Object exports);  // bind_matmul.cc: gemm, gemv, timeMatmul, patchEmbed, poolSize
void RegisterOpsTests(Napi::Env env, Napi::Object exports);     // bind_ops.cc: attention, norms, activations, RoPE, embedRows
void RegisterAsyncTests(Napi::Env env, Napi::Object exports);   // addon.cc: testSleepAsync, testPoolChurnAsync, testTruncatedMapAsync

}  // namespace pg
