// The native thread pool every kernel shares: threads are created once, never per call.
#pragma once

namespace pg {

class ThreadPool {
 public:
  // threads <= 0: one per physical core.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const;

  // Runs fn(ctx, task, thread) for every task in [0, n_tasks), spread over the pool's threads
  // (the calling thread takes part as thread 0); returns when all tasks are done.
  // A plain function pointer, not std::function: kernels in ISA-specific translation units call
  // this and must not instantiate shared templates (see kernels/kernels.h).
  void run(int n_tasks, void (*fn)(void* ctx, int task, int thread), void* ctx);

 private:
  struct Impl;
  Impl* impl_;
};

// Physical cores of this machine (falls back to logical CPUs).
int physical_cores();

}  // namespace pg
