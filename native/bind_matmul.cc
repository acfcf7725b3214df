// JS bindings of the matrix kernels (for tests and benchmarks; models call the kernels natively),
// their async variants, and the test hooks of the async machinery.
//
//   gemm(x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?)        -> Float32Array [(n-1)*ldy + m]
//   gemv(...same)                                              -> Float32Array
//   gemmAsync(...same)                                         -> Promise<Float32Array>
//   patchEmbed(pixels, channels, height, width, patch, weight, wtype, bias, hidden, simd?)
//                                                              -> Float32Array [n_patches * hidden]
//   timeMatmul(kind, reps, ...gemm's arguments)                 -> Float64Array [reps] (ms per run)
//   poolSize()                                                 -> threads of the shared pool
//   testSleepAsync(ms, failWith?)                              -> Promise<{ start, end }> (ms, steady clock)
//   new WorkQueue(): .gemm(...same as gemm) / .testSleep(ms, failWith?) -> Promise; .pending
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "async.h"
#include "bind.h"

namespace pg {
namespace {

// Outputs larger than this are refused rather than allocated (1 GiB of floats).
constexpr size_t kMaxOutputElements = size_t(1) << 28;
constexpr size_t kMaxSafeInteger = (size_t(1) << 53) - 1;

// a * b, or a RangeError naming `what` when it exceeds 2^53 - 1.
size_t CheckedMul(Napi::Env env, size_t a, size_t b, const std::string& what) {
  if (a != 0 && b > kMaxSafeInteger / a) throw Napi::RangeError::New(env, what + " is too large");
  return a * b;
}

size_t PositiveSizeArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const size_t v = SizeArg(info, index, what);
  if (v == 0) throw Napi::RangeError::New(info.Env(), std::string(what) + " must be at least 1");
  return v;
}

int PositiveIntArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const size_t v = PositiveSizeArg(info, index, what);
  if (v > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " is too large");
  return static_cast<int>(v);
}

// An optional size argument: `fallback` when absent.
size_t OptionalSizeArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t fallback) {
  if (index >= info.Length() || info[index].IsUndefined() || info[index].IsNull()) return fallback;
  return SizeArg(info, index, what);
}

DType WeightTypeArg(const Napi::CallbackInfo& info, size_t index) {
  if (index < info.Length() && info[index].IsString()) {
    const std::string s = info[index].As<Napi::String>().Utf8Value();
    if (s == "f32") return DT_F32;
    if (s == "f16") return DT_F16;
    if (s == "bf16") return DT_BF16;
  }
  throw Napi::TypeError::New(info.Env(), "wtype must be 'f32', 'f16' or 'bf16'");
}

// A weight array of exactly `count` elements: a Float32Array for f32, a Uint16Array of raw bits
// for f16 / bf16.
const void* WeightArg(const Napi::CallbackInfo& info, size_t index, DType type, size_t count, const char* what) {
  const void* p = type == DT_F32 ? static_cast<const void*>(TypedArrayArg<float>(info, index, what, 0))
                                 : static_cast<const void*>(TypedArrayArg<uint16_t>(info, index, what, 0));
  const size_t length = info[index].As<Napi::TypedArray>().ElementLength();
  if (length != count)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " has " + std::to_string(length) +
                                                " elements, expected " + std::to_string(count));
  return p;
}

// An optional bias: null/undefined, or a Float32Array of exactly `count` elements.
const float* BiasArg(const Napi::CallbackInfo& info, size_t index, size_t count) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) return nullptr;
  const float* p = TypedArrayArg<float>(info, index, "bias", 0);
  const size_t length = info[index].As<Napi::TypedArray>().ElementLength();
  if (length != count)
    throw Napi::RangeError::New(info.Env(), "bias has " + std::to_string(length) + " elements, expected " +
                                                std::to_string(count));
  return p;
}

Napi::Float32Array NewOutput(Napi::Env env, size_t elements) {
  if (elements > kMaxOutputElements)
    throw Napi::RangeError::New(env, "output of " + std::to_string(elements) + " elements exceeds the limit of " +
                                         std::to_string(kMaxOutputElements));
  return Napi::Float32Array::New(env, elements);  // zero-filled
}

// The kernel arguments of a gemm/gemv call (plain data, safe to hand to a worker thread).
struct KernelCall {
  const KernelTable* kernels;
  MatmulArgs args;

  void gemm() const { kernels->gemm(SharedPool(), args); }
  void gemv() const { kernels->gemv(SharedPool(), args); }
};

// A validated call (x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?) with its output array.
struct MatmulCall {
  KernelCall call;
  Napi::Float32Array out;
  Kept inputs;  // the JS arrays the kernel reads
};

// Arguments (x, w, wtype, bias, n, k, m, simd?, ldx?, ldy?) from info[at] on.
MatmulCall ParseMatmul(const Napi::CallbackInfo& info, size_t at = 0) {
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
  a.wtype = WeightTypeArg(info, at + 2);
  a.w = WeightArg(info, at + 1, a.wtype, w_count, "w");
  a.bias = BiasArg(info, at + 3, a.m);
  MatmulCall c{{kernels, a}, NewOutput(env, y_needed), {info[at], info[at + 1]}};
  c.call.args.y = c.out.Data();
  if (a.bias) c.inputs.push_back(info[at + 3]);
  return c;
}

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
  MatmulCall c = ParseMatmul(info);
  RunKernel(info.Env(), "gemm", [&] { c.call.gemm(); });
  return c.out;
}

Napi::Value GemvJs(const Napi::CallbackInfo& info) {
  MatmulCall c = ParseMatmul(info);
  RunKernel(info.Env(), "gemv", [&] { c.call.gemv(); });
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
  MatmulCall c = ParseMatmul(info, 2);
  Napi::Float64Array ms = Napi::Float64Array::New(env, reps);
  RunKernel(env, kind.c_str(), [&] {
    for (size_t r = 0; r < reps; r++) {
      const double t0 = NowMs();
      kind == "gemm" ? c.call.gemm() : c.call.gemv();
      ms[r] = NowMs() - t0;
    }
  });
  return ms;
}

// The async form of a gemm call: keeps the output array first, then the inputs it reads.
AsyncJob GemmJob(const MatmulCall& c) {
  AsyncJob job;
  job.work = [call = c.call] { call.gemm(); };
  job.complete = [](Napi::Env, const Kept& kept) { return kept[0]; };
  job.keep_alive = {c.out};
  job.keep_alive.insert(job.keep_alive.end(), c.inputs.begin(), c.inputs.end());
  return job;
}

Napi::Value GemmAsyncJs(const Napi::CallbackInfo& info) { return RunAsync(info.Env(), GemmJob(ParseMatmul(info))); }

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
  const DType wtype = WeightTypeArg(info, 6);
  const size_t patch_len = CheckedMul(env, CheckedMul(env, channels, patch, "channels * patch"), patch, "patch size");
  const void* weight = WeightArg(info, 5, wtype, CheckedMul(env, hidden, patch_len, "weight size"), "weight");
  const float* bias = BiasArg(info, 7, hidden);
  const size_t n_patches = static_cast<size_t>(height / patch) * static_cast<size_t>(width / patch);
  Napi::Float32Array out = NewOutput(env, CheckedMul(env, n_patches, hidden, "output size"));
  RunKernel(env, "patchEmbed", [&] {
    kernels->patch_embed(SharedPool(), pixels, channels, height, width, patch, weight, wtype, bias, out.Data(), hidden);
  });
  return out;
}

Napi::Value PoolSizeJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), SharedPool()->size()); }

// A job that sleeps `ms` on its worker thread and resolves { start, end }, or throws `failWith`.
AsyncJob SleepJob(const Napi::CallbackInfo& info) {
  const size_t ms = SizeArg(info, 0, "ms");
  if (ms > 10000) throw Napi::RangeError::New(info.Env(), "ms must be at most 10000");
  std::string fail;
  const bool fails = info.Length() > 1 && info[1].IsString();
  if (fails) fail = info[1].As<Napi::String>().Utf8Value();
  auto times = std::make_shared<std::pair<double, double>>();
  AsyncJob job;
  job.work = [ms, fails, fail, times] {
    times->first = NowMs();
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    times->second = NowMs();
    if (fails) throw std::runtime_error(fail);
  };
  job.complete = [times](Napi::Env env, const Kept&) {
    auto o = Napi::Object::New(env);
    o.Set("start", times->first);
    o.Set("end", times->second);
    return Napi::Value(o);
  };
  return job;
}

Napi::Value TestSleepAsyncJs(const Napi::CallbackInfo& info) { return RunAsync(info.Env(), SleepJob(info)); }

// testPoolChurnAsync(count, threads): creates and destroys `count` pools off the JS thread, so a
// pool that cannot be destroyed (a worker that misses the stop) fails a test by timing out
// instead of hanging the test runner.
Napi::Value TestPoolChurnAsyncJs(const Napi::CallbackInfo& info) {
  const size_t count = SizeArg(info, 0, "count");
  const size_t threads = SizeArg(info, 1, "threads");
  if (threads < 1 || threads > 64) throw Napi::RangeError::New(info.Env(), "threads must be in 1..64");
  AsyncJob job;
  job.work = [count, threads] {
    for (size_t i = 0; i < count; i++) ThreadPool pool(static_cast<int>(threads));
  };
  job.complete = [](Napi::Env env, const Kept&) -> Napi::Value { return env.Undefined(); };
  return RunAsync(info.Env(), std::move(job));
}

// A JS handle on a WorkQueue, so tests can check that jobs on one queue serialise.
class WorkQueueJs : public Napi::ObjectWrap<WorkQueueJs> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WorkQueue",
                       {InstanceMethod<&WorkQueueJs::Gemm>("gemm"),
                        InstanceMethod<&WorkQueueJs::TestSleep>("testSleep"),
                        InstanceAccessor<&WorkQueueJs::Pending>("pending")});
  }
  explicit WorkQueueJs(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WorkQueueJs>(info) {}

 private:
  Napi::Value Gemm(const Napi::CallbackInfo& info) { return queue_.Enqueue(info.Env(), GemmJob(ParseMatmul(info))); }
  Napi::Value TestSleep(const Napi::CallbackInfo& info) { return queue_.Enqueue(info.Env(), SleepJob(info)); }
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(queue_.pending()));
  }

  WorkQueue queue_;
};

}  // namespace

void RegisterMatmul(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, GemmJs));
  exports.Set("gemv", Napi::Function::New(env, GemvJs));
  exports.Set("gemmAsync", Napi::Function::New(env, GemmAsyncJs));
  exports.Set("patchEmbed", Napi::Function::New(env, PatchEmbedJs));
  exports.Set("timeMatmul", Napi::Function::New(env, TimeMatmulJs));
  exports.Set("poolSize", Napi::Function::New(env, PoolSizeJs));
  exports.Set("testSleepAsync", Napi::Function::New(env, TestSleepAsyncJs));
  exports.Set("testPoolChurnAsync", Napi::Function::New(env, TestPoolChurnAsyncJs));
  exports.Set("WorkQueue", WorkQueueJs::Define(env));
}

}  // namespace pg
