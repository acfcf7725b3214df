#include "async.h"

#include <new>
#include <string>
#include <utility>

#include "errors.h"
#include "threadpool.h"

namespace pg {

Napi::Error ToJsError(Napi::Env env, std::exception_ptr error, const char* context) {
  const auto coded = [&](const std::string& code, const std::string& path, const std::string& message) {
    Napi::Error e = Napi::Error::New(env, path.empty() ? message : path + ": " + message);
    e.Set("code", Napi::String::New(env, code));
    if (!path.empty()) e.Set("path", Napi::String::New(env, path));
    return e;
  };
  try {
    std::rethrow_exception(error);
  } catch (const Napi::Error& e) {
    return e;
  } catch (const CodedError& e) {
    return coded(e.code, e.path, e.what());
  } catch (const ThreadStartError& e) {
    return coded("THREAD_LIMIT", "", e.what());
  } catch (const std::bad_alloc&) {
    return coded("OUT_OF_MEMORY", "", std::string("out of memory in ") + context);
  } catch (const std::exception& e) {
    return Napi::Error::New(env, std::string(context) + ": " + e.what());
  } catch (...) {
    return Napi::Error::New(env, std::string(context) + ": an unknown native exception");
  }
}

namespace {

// A queued job: the work, the Promise it settles and the JS values it holds, as N-API handles (no
// Napi:: object here may throw on the way out of an environment that is going away).
struct Job {
  napi_env env = nullptr;
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::function<void()> run;
  std::function<Napi::Value(Napi::Env, const Kept&)> complete;
  std::vector<napi_ref> kept;
  const char* name = "";
  std::exception_ptr error;  // what `run` threw
  bool closing = false;      // the environment began shutting down: touch no JS value

  // Drops the references and the async work (none of this runs JS).
  ~Job() {
    for (napi_ref ref : kept) napi_delete_reference(env, ref);
    if (work) napi_delete_async_work(env, work);
  }
};

void Execute(napi_env, void* data) {
  Job* job = static_cast<Job*>(data);
  try {
    job->run();
  } catch (...) {
    job->error = std::current_exception();
  }
}

// Resolves or rejects the job's Promise. Every failure is contained: when the environment cannot
// take a value any more, the Promise is simply left (it goes away with its environment).
void Settle(Job& job) {
  Napi::Env env(job.env);
  try {
    Napi::HandleScope scope(env);
    try {
      if (job.error) std::rethrow_exception(job.error);
      Kept kept;
      kept.reserve(job.kept.size());
      for (napi_ref ref : job.kept) {
        napi_value v = nullptr;
        napi_get_reference_value(job.env, ref, &v);
        kept.push_back(Napi::Value(env, v));
      }
      napi_resolve_deferred(job.env, job.deferred, job.complete(env, kept));
    } catch (...) {
      napi_reject_deferred(job.env, job.deferred, ToJsError(env, std::current_exception(), job.name).Value());
    }
  } catch (...) {
  }
  // Nothing may be left pending: N-API would report it as an uncaught exception.
  bool pending = false;
  if (napi_is_exception_pending(job.env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(job.env, &ignored);
  }
}

void OnEnvCleanup(void* data);

void Complete(napi_env env, napi_status status, void* data) {
  std::unique_ptr<Job> job(static_cast<Job*>(data));
  napi_remove_env_cleanup_hook(env, OnEnvCleanup, job.get());
  if (status == napi_ok && !job->closing) Settle(*job);
}

// The environment is shutting down: a job still queued is cancelled (Complete then runs with
// napi_cancelled), a running one finishes its work and Complete only frees it.
void OnEnvCleanup(void* data) {
  Job* job = static_cast<Job*>(data);
  job->closing = true;
  napi_cancel_async_work(job->env, job->work);
}

}  // namespace

Napi::Promise RunAsync(Napi::Env env, AsyncJob spec) {
  auto job = std::make_unique<Job>();
  job->env = env;
  job->run = std::move(spec.work);
  job->complete = std::move(spec.complete);
  job->name = spec.name;
  napi_value promise = nullptr, name = nullptr;
  auto check = [&](napi_status status) {
    if (status != napi_ok) throw Napi::Error::New(env);
  };
  check(napi_create_promise(env, &job->deferred, &promise));
  for (const Napi::Value& v : spec.keep_alive) {
    napi_ref ref = nullptr;
    check(napi_create_reference(env, v, 1, &ref));
    job->kept.push_back(ref);
  }
  check(napi_create_string_utf8(env, "paligemma", NAPI_AUTO_LENGTH, &name));
  check(napi_create_async_work(env, nullptr, name, Execute, Complete, job.get(), &job->work));
  check(napi_add_env_cleanup_hook(env, OnEnvCleanup, job.get()));
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_remove_env_cleanup_hook(env, OnEnvCleanup, job.get());
    throw Napi::Error::New(env);
  }
  job.release();  // Complete owns it now
  return Napi::Promise(env, promise);
}

}  // namespace pg
