// Helpers shared by the binding files of both addons (native/bind_*.cc, native/testing/): argument
// checks that turn into JS exceptions, never aborts, and the guard every binding runs under.
#pragma once

#include <napi.h>

#include <string>

#include "async.h"
#include "kernels/kernels.h"
#include "threadpool.h"

namespace pg {

// Each binding file registers its functions on an addon's exports.
void RegisterRuntime(Napi::Env env, Napi::Object exports);  // bind_runtime.cc: CPU features, SIMD variants
void RegisterMatmul(Napi::Env env, Napi::Object exports);   // bind_matmul.cc: gemmAsync
void RegisterImage(Napi::Env env, Napi::Object exports);    // bind_image.cc: resizeRgb
void RegisterModel(Napi::Env env, Napi::Object exports);    // bind_model.cc: NativeModel (PaliGemma)
void RegisterQuant(Napi::Env env, Napi::Object exports);    // bind_quant.cc: quantizeRowsAsync
void RegisterQuantTests(Napi::Env env, Napi::Object exports);  // bind_quant.cc: dequantizeRows (test addon)

// Runs a binding's body so that every C++ exception it throws becomes the typed JS error ToJsError
// (async.h) makes of it. (The addons also build with NODE_ADDON_API_CPP_EXCEPTIONS_ALL, which would
// catch the rest, without a code.)
template <class Body>
Napi::Value RunGuarded(const Napi::CallbackInfo& info, const Body& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw ToJsError(info.Env(), std::current_exception(), "a native call");
  }
}

// A guarded binding function: Napi::Function::New(env, Guarded<FooJs>, "foo").
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return RunGuarded(info, [&] { return F(info); });
}

// The kernel table named by an optional string argument (a SIMD variant name); the process
// default when the argument is undefined. Throws a JS Error when the CPU cannot run it.
const KernelTable* KernelsArg(const Napi::CallbackInfo& info, size_t index);

// The process-wide pool of the kernel bindings (models own their pools).
ThreadPool* SharedPool();

// A TypedArray argument of element type T with at least `min_elements` elements; throws a
// TypeError/RangeError naming `what` otherwise.
template <typename T>
T* TypedArrayArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t min_elements);

// A non-negative integer argument; throws naming `what` otherwise.
size_t SizeArg(const Napi::CallbackInfo& info, size_t index, const char* what);
// The same, at least 1; and at most INT_MAX for PositiveIntArg.
size_t PositiveSizeArg(const Napi::CallbackInfo& info, size_t index, const char* what);
int PositiveIntArg(const Napi::CallbackInfo& info, size_t index, const char* what);

// a * b, or a RangeError naming `what` when it exceeds 2^53 - 1.
size_t CheckedMul(Napi::Env env, size_t a, size_t b, const std::string& what);

// A weight type named by its lowercase name in weight_types.h ('f32', 'f16', 'bf16').
const WeightType& WeightTypeArg(const Napi::CallbackInfo& info, size_t index, const char* what);

// Weights of type `t`: a Float32Array for F32, the raw 16-bit words of F16 / BF16 in a Uint16Array,
// the raw blocks of a block type in a Uint8Array. Sets `elements` to the weight elements it holds.
const void* WeightArrayArg(const Napi::CallbackInfo& info, size_t index, const WeightType& t, const char* what,
                           size_t* elements);

// A fresh (zero-filled) Float32Array for a kernel's output; a RangeError beyond 2^28 elements.
Napi::Float32Array NewOutput(Napi::Env env, size_t elements);

// An optional bias: null/undefined, or a Float32Array of exactly `count` elements.
const float* BiasArg(const Napi::CallbackInfo& info, size_t index, size_t count);

// A gemm-style call (x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?) from info[at] on, checked, with
// its fresh output array: gemmAsync here, gemm/gemv/timeMatmul in the test addon.
struct MatmulCall {
  const KernelTable* kernels;
  MatmulArgs args;
  Napi::Float32Array out;
  Kept inputs;  // the JS arrays the kernel reads

  void gemm() const { kernels->gemm(SharedPool(), args); }
  void gemv() const { kernels->gemv(SharedPool(), args); }
};
MatmulCall ParseMatmul(const Napi::CallbackInfo& info, size_t at = 0);

}  // namespace pg
