// The native thread pool every kernel shares: threads are created once, never per call.
#pragma once

#include <stdexcept>
#include <string>

namespace pg {

// The OS refused to start a pool thread (a limit on threads or on address space: each thread
// needs a stack). The threads already started were stopped and joined.
class ThreadStartError : public std::runtime_error {
 public:
  ThreadStartError(int requested, int started, const std::string& reason)
      : std::runtime_error("cannot start " + std::to_string(requested) + " threads (" + std::to_string(started) +
                           " started): " + reason),
        requested(requested),
        started(started),
        reason(reason) {}
  int requested, started;
  std::string reason;
};

class ThreadPool {
 public:
  // threads <= 0: one per physical core. Throws ThreadStartError.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;

  // Runs fn(ctx, task, thread) for every task in [0, n_tasks), spread over the pool's threads
  // (the calling thread takes part as thread 0); returns when all tasks are done.
  // A plain function pointer, not std::function: kernels in ISA-specific translation units call
  // this and must not instantiate shared templates (see kernels/kernels.h).
  // Each task runs under a fault guard (fault_guard.h): a task that faults on a truncated mapped
  // file stops, and the pool then skips the tasks of every run() until take_fault() is called.
  void run(int n_tasks, void (*fn)(void* ctx, int task, int thread), void* ctx);

  // Whether a task stopped on a fault since the last call; clears the state.
  bool take_fault();

 private:
  struct Impl;
  Impl* impl_;
};

// Physical cores of this machine (falls back to logical CPUs).
int physical_cores();

}  // namespace pg
