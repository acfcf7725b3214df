// The matrix kernels called from JS, for tests and benchmarks: each runs on the JS thread over the
// shared pool, with a SIMD variant forced by an optional name.
//
//   gemm(x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?)   -> Float32Array [(n-1)*ldy + m]
//   gemv(...same)                                         -> Float32Array
//   gemmGeglu(gate, ...gemm's arguments)                  -> Float32Array: gate [(n-1)*ldy + m] with
//                                                            the GEMM's product folded in (MatmulArgs::geglu)
//   timeMatmul(kind, reps, ...gemm's arguments)           -> Float64Array [reps] (ms per run)
//   patchEmbed(pixels, channels, height, width, patch, weight, wtype, bias, hidden, simd?)
//                                                         -> Float32Array [n_patches * hidden]
//   poolSize()                                            -> threads of the shared pool
#include <algorithm>
#include <chrono>
#include <string>

#include "../bind.h"
#include "testing.h"

namespace pg {
namespace {

// Runs a kernel on the JS thread; a C++ exception (std::bad_alloc for a scratch buffer) becomes a
// JS Error instead of escaping into node.
template <typename Fn>
void RunKernel(Napi::Env env, const char* name, Fn fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(name) + ": " + e.what());
  }
}

Napi::Value GemmJs(const Napi::CallbackInfo& info) {
  const MatmulCall c = ParseMatmul(info);
  RunKernel(info.Env(), "gemm", [&] { c.gemm(); });
  return c.out;
}

// The GEMM with a GeGLU folded in: the output starts as a copy of `gate` (gaps between rows included).
Napi::Value GemmGegluJs(const Napi::CallbackInfo& info) {
  MatmulCall c = ParseMatmul(info, 1);
  const size_t length = c.out.ElementLength();
  const float* gate = TypedArrayArg<float>(info, 0, "gate", length);
  if (info[0].As<Napi::TypedArray>().ElementLength() != length)
    throw Napi::RangeError::New(info.Env(), "gate must have (n - 1) * ldy + m = " + std::to_string(length) + " elements");
  std::copy(gate, gate + length, c.args.y);
  c.args.geglu = c.kernels->geglu;
  RunKernel(info.Env(), "gemmGeglu", [&] { c.gemm(); });
  return c.out;
}

Napi::Value GemvJs(const Napi::CallbackInfo& info) {
  const MatmulCall c = ParseMatmul(info);
  RunKernel(info.Env(), "gemv", [&] { c.gemv(); });
  return c.out;
}

double NowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// The kernel `reps` times back to back into one output, the way the model's layer loops call it:
// no JS call, allocation or idle pool between the runs. Each run's milliseconds, for benchmarks.
Napi::Value TimeMatmulJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string kind = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (kind != "gemm" && kind != "gemv") throw Napi::TypeError::New(env, "timeMatmul: kind must be 'gemm' or 'gemv'");
  const size_t reps = PositiveSizeArg(info, 1, "reps");
  if (reps > 10000) throw Napi::RangeError::New(env, "reps must be at most 10000");
  const MatmulCall c = ParseMatmul(info, 2);
  Napi::Float64Array ms = Napi::Float64Array::New(env, reps);
  RunKernel(env, kind.c_str(), [&] {
    for (size_t r = 0; r < reps; r++) {
      const double t0 = NowMs();
      kind == "gemm" ? c.gemm() : c.gemv();
      ms[r] = NowMs() - t0;
    }
  });
  return ms;
}

Napi::Value PatchEmbedJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int channels = PositiveIntArg(info, 1, "channels");
  const int height = PositiveIntArg(info, 2, "height");
  const int width = PositiveIntArg(info, 3, "width");
  const int patch = PositiveIntArg(info, 4, "patch");
  const int hidden = PositiveIntArg(info, 8, "hidden");
  const KernelTable* kernels = KernelsArg(info, 9);
  if (patch > height || patch > width) throw Napi::RangeError::New(env, "patch must not exceed height and width");
  const size_t n_pixels = CheckedMul(env, CheckedMul(env, channels, height, "channels * height"), width, "pixels");
  const float* pixels = TypedArrayArg<float>(info, 0, "pixels", n_pixels);
  const size_t pixels_length = info[0].As<Napi::TypedArray>().ElementLength();
  if (pixels_length != n_pixels)
    throw Napi::RangeError::New(env, "pixels has " + std::to_string(pixels_length) +
                                         " elements, expected channels * height * width = " + std::to_string(n_pixels));
  const WeightType& wt = WeightTypeArg(info, 6, "wtype");
  const size_t patch_len = CheckedMul(env, CheckedMul(env, channels, patch, "channels * patch"), patch, "patch size");
  const size_t w_count = CheckedMul(env, hidden, patch_len, "weight size");
  size_t w_elements = 0;
  const void* weight = WeightArrayArg(info, 5, wt, "weight", &w_elements);
  if (w_elements != w_count)
    throw Napi::RangeError::New(env, "weight has " + std::to_string(w_elements) + " elements, expected " + std::to_string(w_count));
  const float* bias = BiasArg(info, 7, hidden);
  const size_t n_patches = static_cast<size_t>(height / patch) * static_cast<size_t>(width / patch);
  Napi::Float32Array out = NewOutput(env, CheckedMul(env, n_patches, hidden, "output size"));
  RunKernel(env, "patchEmbed", [&] {
    kernels->patch_embed(SharedPool(), pixels, channels, height, width, patch, weight, wt.id, bias, out.Data(), hidden);
  });
  return out;
}

Napi::Value PoolSizeJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), SharedPool()->size()); }

}  // namespace

void RegisterKernelTests(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, GemmJs));
  exports.Set("gemmGeglu", Napi::Function::New(env, GemmGegluJs));
  exports.Set("gemv", Napi::Function::New(env, GemvJs));
  exports.Set("timeMatmul", Napi::Function::New(env, TimeMatmulJs));
  exports.Set("patchEmbed", Napi::Function::New(env, PatchEmbedJs));
  exports.Set("poolSize", Napi::Function::New(env, PoolSizeJs));
}

}  // namespace pg
