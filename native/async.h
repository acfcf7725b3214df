// Running native work off the JS thread: Promise-returning jobs on the libuv thread pool.
//
// Usage from a binding:
//   auto out = Napi::Float32Array::New(env, n);
//   float* dst = out.Data();
//   return RunAsync(env, {[=] { compute(dst); },                       // worker thread
//                         [](Napi::Env, const Kept& kept) { return kept[0]; },  // JS thread
//                         {out, input}});                             // alive until settled
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <vector>

namespace pg {

// The JS values a job keeps alive, in the order given in AsyncJob::keep_alive.
using Kept = std::vector<Napi::Value>;

struct AsyncJob {
  // Runs on a libuv worker thread and must not touch JS values. A thrown std::exception rejects the
  // Promise with an Error carrying its what() message.
  std::function<void()> work;
  // Runs on the JS thread after `work` succeeded; its value resolves the Promise (a throw rejects).
  std::function<Napi::Value(Napi::Env env, const Kept& kept)> complete;
  // JS values referenced until the job settles: the TypedArrays the work reads and writes (their
  // contents must not be changed, nor their buffers transferred, while the job runs).
  std::vector<Napi::Value> keep_alive;
};

// Runs a job on the libuv thread pool now; the Promise settles when it is done.
Napi::Promise RunAsync(Napi::Env env, AsyncJob job);

}  // namespace pg
