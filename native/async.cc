#include "async.h"

#include <exception>
#include <string>
#include <utility>

namespace pg {
namespace {

// A job whose JS values are held as references, so they outlive the handle scope that created it.
struct HeldJob {
  std::function<void()> work;
  std::function<Napi::Value(Napi::Env, const Kept&)> complete;
  std::vector<Napi::Reference<Napi::Value>> kept;
  Napi::Promise::Deferred deferred;

  HeldJob(Napi::Env env, AsyncJob job)
      : work(std::move(job.work)), complete(std::move(job.complete)), deferred(Napi::Promise::Deferred::New(env)) {
    kept.reserve(job.keep_alive.size());
    for (const auto& v : job.keep_alive) kept.push_back(Napi::Persistent(v));
  }
};

// Runs a HeldJob's work on a libuv thread and settles its Promise on the JS thread.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::unique_ptr<HeldJob> job) : Napi::AsyncWorker(env, "paligemma"), job_(std::move(job)) {}

 protected:
  void Execute() override {
    try {
      job_->work();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("native work failed with an unknown error");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Kept kept;
    kept.reserve(job_->kept.size());
    for (auto& ref : job_->kept) kept.push_back(ref.Value());
    try {
      job_->deferred.Resolve(job_->complete(env, kept));
    } catch (const Napi::Error& e) {
      job_->deferred.Reject(e.Value());
    } catch (const std::exception& e) {
      job_->deferred.Reject(Napi::Error::New(env, e.what()).Value());
    }
    Finish();
  }

  void OnError(const Napi::Error& e) override {
    job_->deferred.Reject(e.Value());
    Finish();
  }

 private:
  void Finish() { job_.reset(); }  // release the references now, not when the worker is deleted

  std::unique_ptr<HeldJob> job_;
};

}  // namespace

Napi::Promise RunAsync(Napi::Env env, AsyncJob job) {
  auto held = std::make_unique<HeldJob>(env, std::move(job));
  Napi::Promise promise = held->deferred.Promise();
  (new PromiseWorker(env, std::move(held)))->Queue();  // deletes itself when done
  return promise;
}

}  // namespace pg
