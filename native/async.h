// Running native work off the JS thread: Promise-returning jobs on the libuv thread pool.
//
// Usage from a binding:
//   auto out = Napi::Float32Array::New(env, n);
//   float* dst = out.Data();
//   return RunAsync(env, {[=] { compute(dst); },                       // worker thread
//                         [](Napi::Env, const Kept& kept) { return kept[0]; },  // JS thread
//                         {out, input}});                             // alive until settled
//
// Environment shutdown (a Worker terminated, an Electron page reloaded, the process exiting): a job
// still queued is cancelled from an environment cleanup hook; a job that finishes while its
// environment is going away settles nothing: `complete` is not called, no JS value is touched (a
// failed N-API call there would otherwise throw a C++ exception on the way out, and abort). Its
// native resources are released either way.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <memory>
#include <vector>

namespace pg {

// The JS values a job keeps alive, in the order given in AsyncJob::keep_alive.
using Kept = std::vector<Napi::Value>;

struct AsyncJob {
  // Runs on a libuv worker thread and must not touch JS values. A thrown exception rejects the
  // Promise with the error ToJsError makes of it.
  std::function<void()> work;
  // Runs on the JS thread after `work` succeeded; its value resolves the Promise (a throw rejects).
  std::function<Napi::Value(Napi::Env env, const Kept& kept)> complete;
  // JS values referenced until the job settles: the TypedArrays the work reads and writes (their
  // contents must not be changed, nor their buffers transferred, while the job runs).
  std::vector<Napi::Value> keep_alive;
  // What the job does, for an out-of-memory message ("out of memory in resizeRgb").
  const char* name = "native work";
};

// Runs a job on the libuv thread pool now; the Promise settles when it is done.
Napi::Promise RunAsync(Napi::Env env, AsyncJob job);

// The JS error for a native failure: a CodedError (errors.h) keeps its `code` and `path`, a
// std::bad_alloc becomes OUT_OF_MEMORY naming `context`, a thread that cannot start THREAD_LIMIT, a
// Napi::Error stays itself; anything else is a plain Error with its message (a bug).
Napi::Error ToJsError(Napi::Env env, std::exception_ptr error, const char* context);

}  // namespace pg
