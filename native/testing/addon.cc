// The test addon: kernel bindings and hooks for tests and benchmarks (see testing.h), plus the
// runtime functions, so a test can set its default SIMD variant as the shipped addon's is set.
//
//   testSleepAsync(ms, failWith?)        -> Promise<{ start, end }> (ms, steady clock)
//   testPoolChurnAsync(count, threads)   -> Promise<void>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "../bind.h"
#include "testing.h"

namespace pg {
namespace {

double NowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// A job that sleeps `ms` on its worker thread and resolves { start, end }, or throws `failWith`:
// RunAsync keeps the event loop free and turns work errors into rejections.
Napi::Value TestSleepAsyncJs(const Napi::CallbackInfo& info) {
  const size_t ms = SizeArg(info, 0, "ms");
  if (ms > 10000) throw Napi::RangeError::New(info.Env(), "ms must be at most 10000");
  const bool fails = info.Length() > 1 && info[1].IsString();
  const std::string fail = fails ? info[1].As<Napi::String>().Utf8Value() : "";
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
  return RunAsync(info.Env(), std::move(job));
}

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterRuntime(env, exports);
  RegisterKernelTests(env, exports);
  RegisterOpsTests(env, exports);
  RegisterAsyncTests(env, exports);
  RegisterQuantTests(env, exports);
  return exports;
}

}  // namespace

void RegisterAsyncTests(Napi::Env env, Napi::Object exports) {
  exports.Set("testSleepAsync", Napi::Function::New(env, TestSleepAsyncJs));
  exports.Set("testPoolChurnAsync", Napi::Function::New(env, TestPoolChurnAsyncJs));
}

}  // namespace pg

static Napi::Object InitTestAddon(Napi::Env env, Napi::Object exports) { return pg::Init(env, exports); }

NODE_API_MODULE(paligemma_test, InitTestAddon)
