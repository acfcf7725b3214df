// Helpers shared by the binding files (native/bind_*.cc): argument checks that turn into JS
// exceptions, never aborts.
#pragma once

#include <napi.h>

#include <string>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace pg {

// Each binding file registers its functions on the addon's exports.
void RegisterMatmul(Napi::Env env, Napi::Object exports);  // bind_matmul.cc: gemm, gemv, patchEmbed, pool
void RegisterOps(Napi::Env env, Napi::Object exports);     // bind_ops.cc: attention, norms, activations, rope...
void RegisterImage(Napi::Env env, Napi::Object exports);   // bind_image.cc: resize
void RegisterModel(Napi::Env env, Napi::Object exports);   // bind_model.cc: NativeModel (SigLIP + Gemma)
void RegisterQuant(Napi::Env env, Napi::Object exports);   // bind_quant.cc: quantizeRowsAsync, dequantizeRows

// The kernel table named by an optional string argument (a SIMD variant name); the process
// default when the argument is undefined. Throws a JS Error when the CPU cannot run it.
const KernelTable* KernelsArg(const Napi::CallbackInfo& info, size_t index);

// The process-wide pool used by the kernel test bindings (models own their pools).
ThreadPool* SharedPool();

// A TypedArray argument of element type T with at least `min_elements` elements; throws a
// TypeError/RangeError naming `what` otherwise.
template <typename T>
T* TypedArrayArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t min_elements);

// A non-negative integer argument; throws naming `what` otherwise.
size_t SizeArg(const Napi::CallbackInfo& info, size_t index, const char* what);

}  // namespace pg
