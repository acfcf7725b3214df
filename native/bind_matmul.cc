// gemmAsync: the GEMM kernel on a libuv worker thread, for the segmentation decoder's convolutions
// (lib/tasks/conv.ts); the model's layer loops call the kernels natively.
//
//   gemmAsync(x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?) -> Promise<Float32Array [(n-1)*ldy + m]>
#include <string>

#include "bind.h"

namespace pg {
namespace {

// An optional size argument: `fallback` when absent.
size_t OptionalSizeArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t fallback) {
  if (index >= info.Length() || info[index].IsUndefined() || info[index].IsNull()) return fallback;
  return SizeArg(info, index, what);
}

Napi::Value GemmAsyncJs(const Napi::CallbackInfo& info) {
  const MatmulCall c = ParseMatmul(info);
  AsyncJob job;
  job.work = [kernels = c.kernels, args = c.args] { kernels->gemm(SharedPool(), args); };
  job.complete = [](Napi::Env, const Kept& kept) { return kept[0]; };
  job.keep_alive = {c.out};  // the output first, then the inputs the kernel reads
  job.keep_alive.insert(job.keep_alive.end(), c.inputs.begin(), c.inputs.end());
  job.name = "gemmAsync";
  return RunAsync(info.Env(), std::move(job));
}

}  // namespace

MatmulCall ParseMatmul(const Napi::CallbackInfo& info, size_t at) {
  Napi::Env env = info.Env();
  MatmulArgs a;
  a.n = PositiveSizeArg(info, at + 4, "n");
  a.k = PositiveSizeArg(info, at + 5, "k");
  a.m = PositiveSizeArg(info, at + 6, "m");
  const KernelTable* kernels = KernelsArg(info, at + 7);
  a.ldx = OptionalSizeArg(info, at + 8, "ldx", a.k);
  a.ldy = OptionalSizeArg(info, at + 9, "ldy", a.m);
  if (a.ldx < a.k) throw Napi::RangeError::New(env, "ldx must be at least k");
  if (a.ldy < a.m) throw Napi::RangeError::New(env, "ldy must be at least m");
  const size_t x_needed = CheckedMul(env, a.n - 1, a.ldx, "n * ldx") + a.k;
  const size_t y_needed = CheckedMul(env, a.n - 1, a.ldy, "n * ldy") + a.m;
  const size_t w_count = CheckedMul(env, a.m, a.k, "m * k");
  a.x = TypedArrayArg<float>(info, at, "x", x_needed);
  const WeightType& wt = WeightTypeArg(info, at + 2, "wtype");
  if (a.k % wt.block != 0)
    throw Napi::RangeError::New(env, "k must be a multiple of " + std::string(wt.name) + "'s block of " + std::to_string(wt.block));
  a.wtype = wt.id;
  size_t w_elements = 0;
  a.w = WeightArrayArg(info, at + 1, wt, "w", &w_elements);
  if (w_elements != w_count)
    throw Napi::RangeError::New(env, "w has " + std::to_string(w_elements) + " elements, expected " + std::to_string(w_count));
  a.bias = BiasArg(info, at + 3, a.m);
  MatmulCall c{kernels, a, NewOutput(env, y_needed), {info[at], info[at + 1]}};
  c.args.y = c.out.Data();
  if (a.bias) c.inputs.push_back(info[at + 3]);
  return c;
}

void RegisterMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("gemmAsync", Napi::Function::New(env, Guarded<GemmAsyncJs>, "gemmAsync"));
}

}  // namespace pg
