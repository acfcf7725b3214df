#include "threadpool.h"

#include <thread>

namespace pg {

// Placeholder until the pool lands: runs every task on the calling thread.
struct ThreadPool::Impl {
  int threads;
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl{threads > 0 ? threads : physical_cores()}) {}
ThreadPool::~ThreadPool() { delete impl_; }
int ThreadPool::size() const { return impl_->threads; }
void ThreadPool::run(int n_tasks, void (*fn)(void*, int, int), void* ctx) {
  for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
}

int physical_cores() {
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

}  // namespace pg
