// The test addon: kernel bindings and hooks for tests and benchmarks (see testing.h), plus the
// runtime functions, so a test can set its default SIMD variant as the shipped addon's is set.
//
//   testSleepAsync(ms, failWith?)        -> Promise<{ start, end }> (ms, steady clock)
//   testPoolChurnAsync(count, threads)   -> Promise<void>
//   testTruncatedMapAsync(path, threads) -> Promise<{ faulted, tasksAfter, code, message }>
//   dropPageCache(path)                  -> boolean
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "../bind.h"
#include "../errors.h"
#include "../model/mapped_file.h"
#include "testing.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <unistd.h>
#endif

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

// dropPageCache(path): asks the kernel to drop the file's pages from its page cache (those no process
// maps), so the next reads fill it afresh. The bench calls it before warming the cache by reading, so
// every engine starts from pages cached by reads, whatever wrote the file: on Linux 6.x a file read
// is cached in large folios, which a MADV_HUGEPAGE mapping maps 2 MiB at a time, while the pages a
// write left behind are small. Returns false where there is no such call (not Linux).
Napi::Value DropPageCacheJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
#if defined(__linux__)
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, path + ": cannot open: " + std::strerror(errno));
  const int rc = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (rc != 0) throw Napi::Error::New(env, path + ": posix_fadvise: " + std::strerror(rc));
  return Napi::Boolean::New(env, true);
#else
  return Napi::Boolean::New(env, false);
#endif
}

// testTruncatedMapAsync(path, threads): maps `path`, cuts the file to half its size, and reads every
// page of the map in pool tasks, as the model's kernels read weights. Resolves whether the pool saw
// the fault (instead of the process dying of SIGBUS), how many tasks of a run after take_fault() ran
// (all of them: the pool recovers), and the error check() then gives. POSIX only.
Napi::Value TestTruncatedMapAsyncJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const size_t threads = SizeArg(info, 1, "threads");
  if (threads < 1 || threads > 64) throw Napi::RangeError::New(info.Env(), "threads must be in 1..64");
  struct Result {
    bool faulted = false;
    int tasks_after = 0;
    std::string code, message;
  };
  auto result = std::make_shared<Result>();
  AsyncJob job;
  job.work = [path, threads, result] {
#if defined(_WIN32)
    throw std::runtime_error("testTruncatedMapAsync: POSIX only");
#else
    MappedFile file(path);
    if (::truncate(path.c_str(), static_cast<off_t>(file.size() / 2)) != 0) throw std::runtime_error("cannot truncate " + path);
    ThreadPool pool(static_cast<int>(threads));
    struct Pages {
      const volatile uint8_t* data;
      size_t size;
      int tasks;
    } pages{file.data(), file.size(), 16};
    pool.run(pages.tasks, [](void* p, int task, int) {
      const Pages& g = *static_cast<const Pages*>(p);
      const size_t begin = g.size * task / g.tasks, end = g.size * (task + 1) / g.tasks;
      unsigned sum = 0;
      for (size_t at = begin; at < end; at += 4096) sum += g.data[at];
      (void)sum;
    }, &pages);
    result->faulted = pool.take_fault();
    std::atomic<int> ran{0};
    pool.run(8, [](void* p, int, int) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }, &ran);
    result->tasks_after = ran.load();
    try {
      file.check(true);
    } catch (const CodedError& e) {
      result->code = e.code;
      result->message = e.what();
    }
#endif
  };
  job.complete = [result](Napi::Env env, const Kept&) {
    auto o = Napi::Object::New(env);
    o.Set("faulted", result->faulted);
    o.Set("tasksAfter", result->tasks_after);
    o.Set("code", result->code);
    o.Set("message", result->message);
    return Napi::Value(o);
  };
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
  exports.Set("testTruncatedMapAsync", Napi::Function::New(env, TestTruncatedMapAsyncJs));
  exports.Set("dropPageCache", Napi::Function::New(env, DropPageCacheJs));
}

}  // namespace pg

static Napi::Object InitTestAddon(Napi::Env env, Napi::Object exports) { return pg::Init(env, exports); }

NODE_API_MODULE(paligemma_test, InitTestAddon)
