// The shared thread pool: size()-1 persistent workers plus the calling thread.
//
// Dispatch is built for many short parallel regions (a decode step runs ~100 per token). A job is
// published through one 64-bit atomic "cursor" holding (generation, task count, next task); every
// participant claims tasks by compare-and-swap on it, so a claim is valid only for the job it was
// made in. The caller takes part and waits only for tasks, never for a worker to wake up: a worker
// descheduled by another busy process simply misses the job. Idle workers poll the cursor for a
// bounded time and then sleep on a condition variable, so back-to-back regions never pay a futex
// wake-up while an idle pool hands its core back to other processes quickly.
//
// One caller at a time: run() takes a mutex, so concurrent callers (a synchronous kernel on the JS
// thread and an async one on a libuv worker, say) serialise instead of corrupting each other. A
// run() from inside a task (nested parallelism) executes inline on the calling thread.
#include "threadpool.h"

#include "fault_guard.h"
#include "static_tls.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#elif defined(_WIN32)
#include "win.h"
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace pg {
namespace {

// How long an idle thread polls before sleeping. Long enough to bridge the serial work between two
// kernels of a layer, short enough that an idle pool returns its core to other processes quickly.
constexpr auto kSpin = std::chrono::microseconds(200);
constexpr auto kPureSpin = std::chrono::microseconds(5);  // then poll with yields (see spin_until)

// Cursor layout: generation (16 bits) | task count (24 bits) | next unclaimed task (24 bits).
constexpr int kTaskBits = 24;
constexpr uint64_t kTaskMask = (uint64_t(1) << kTaskBits) - 1;
constexpr int kMaxTasksPerJob = static_cast<int>(kTaskMask);

constexpr unsigned generation_of(uint64_t c) { return static_cast<unsigned>(c >> (2 * kTaskBits)); }
constexpr int count_of(uint64_t c) { return static_cast<int>((c >> kTaskBits) & kTaskMask); }
constexpr int next_of(uint64_t c) { return static_cast<int>(c & kTaskMask); }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(_M_X64)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Polls `ready` for up to kSpin; true as soon as it holds. After the first few microseconds it
// yields between polls: when the machine is oversubscribed, the thread we wait for may be queued
// on this very core, and a pure spin would keep it off the core for the whole spin.
template <typename Pred>
bool spin_until(Pred ready) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; i++) {
      if (ready()) return true;
      cpu_relax();
    }
    const auto spent = std::chrono::steady_clock::now() - start;
    if (spent >= kSpin) return ready();
    if (spent >= kPureSpin) std::this_thread::yield();
  }
}

PG_STATIC_TLS bool t_in_task = false;  // this thread is running pool tasks: a nested run() goes inline

// Runs a job of more than kMaxTasksPerJob tasks as consecutive jobs.
struct Slice {
  void (*fn)(void*, int, int);
  void* ctx;
  int base;
};
void run_slice(void* p, int task, int thread) {
  auto* s = static_cast<Slice*>(p);
  s->fn(s->ctx, s->base + task, thread);
}

}  // namespace

struct ThreadPool::Impl {
  int threads = 1;
  std::vector<std::thread> workers;
  std::mutex run_mu;  // one run() at a time

  // The current job. fn/ctx are written before the cursor store that publishes them and are read
  // only by a thread holding a claimed, unfinished task, so they are stable while read.
  void (*fn)(void*, int, int) = nullptr;
  void* ctx = nullptr;
  std::atomic<uint64_t> cursor{0};
  std::atomic<int> tasks_done{0};
  std::atomic<bool> stopping{false};
  std::atomic<bool> faulted{false};  // a task stopped on a fault in a mapped file (fault_guard.h)

  std::mutex mu;  // guards the sleeps below (the state itself is atomic)
  std::condition_variable wake;      // workers: a new generation was published
  std::condition_variable finished;  // caller: all tasks are done
  std::atomic<int> sleeping_workers{0};
  std::atomic<bool> caller_sleeping{false};

  // Runs one task under the fault guard; after a fault, skips it.
  void run_task(void (*task_fn)(void*, int, int), void* task_ctx, int task, int thread) {
    if (faulted.load(std::memory_order_relaxed)) return;
    if (!run_guarded(task_fn, task_ctx, task, thread)) faulted.store(true);
  }

  // Claims and runs tasks of generation `gen` until none is left.
  void take_tasks(unsigned gen, int thread) {
    uint64_t c = cursor.load(std::memory_order_acquire);
    for (;;) {
      if (generation_of(c) != gen || next_of(c) >= count_of(c)) return;
      if (!cursor.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      run_task(fn, ctx, next_of(c), thread);
      if (tasks_done.fetch_add(1) + 1 == count_of(c) && caller_sleeping.load()) {
        std::lock_guard<std::mutex> lock(mu);  // the caller is between its check and its wait, or waiting
        finished.notify_one();
      }
      c = cursor.load(std::memory_order_acquire);
    }
  }

  void worker_loop(int thread) {
    t_in_task = true;
    unsigned seen = generation_of(cursor.load());
    for (;;) {
      // `stopping` too: a pool destroyed before this thread first read the cursor publishes no
      // generation this thread can tell from `seen`, and it would sleep forever.
      auto published = [&] { return stopping.load() || generation_of(cursor.load()) != seen; };  // seq_cst: see publish()
      if (!spin_until(published)) {
        std::unique_lock<std::mutex> lock(mu);
        sleeping_workers.fetch_add(1);
        wake.wait(lock, published);
        sleeping_workers.fetch_sub(1);
      }
      if (stopping.load()) return;
      seen = generation_of(cursor.load(std::memory_order_acquire));
      take_tasks(seen, thread);
    }
  }

  // Publishes a job and wakes sleeping workers. The seq_cst store and the seq_cst read of
  // sleeping_workers pair with a worker's increment-then-check under `mu`: either the worker sees
  // the new generation, or we see it asleep and notify under the mutex (no lost wake-up).
  void publish(int n_tasks) {
    const uint64_t gen = (generation_of(cursor.load()) + 1) & 0xffff;
    cursor.store((gen << (2 * kTaskBits)) | (static_cast<uint64_t>(n_tasks) << kTaskBits));
    if (sleeping_workers.load() > 0) {
      std::lock_guard<std::mutex> lock(mu);
      wake.notify_all();
    }
  }

  // Stops and joins the workers.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(run_mu);
      stopping.store(true);
      publish(0);
    }
    for (auto& w : workers) w.join();
  }

  void wait_for_tasks(int n_tasks) {
    auto done = [&] { return tasks_done.load() == n_tasks; };  // seq_cst: pairs with the last worker's check
    if (spin_until(done)) return;
    std::unique_lock<std::mutex> lock(mu);
    caller_sleeping.store(true);
    finished.wait(lock, done);
    caller_sleeping.store(false);
  }
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl) {
  impl_->threads = threads > 0 ? threads : physical_cores();
  try {
    impl_->workers.reserve(static_cast<size_t>(impl_->threads - 1));
    for (int i = 1; i < impl_->threads; i++) impl_->workers.emplace_back([p = impl_, i] { p->worker_loop(i); });
  } catch (const std::exception& e) {  // std::system_error (EAGAIN): a thread or address-space limit
    const int requested = impl_->threads, started = static_cast<int>(impl_->workers.size()) + 1;
    impl_->stop();
    delete impl_;
    throw ThreadStartError(requested, started, e.what());
  }
}

ThreadPool::~ThreadPool() {
  impl_->stop();
  delete impl_;
}

int ThreadPool::size() const { return impl_->threads; }

void ThreadPool::run(int n_tasks, void (*fn)(void* ctx, int task, int thread), void* ctx) {
  if (n_tasks <= 0) return;
  Impl& p = *impl_;
  if (n_tasks == 1 || p.workers.empty() || t_in_task) {  // nothing to share, or nested: run inline
    for (int t = 0; t < n_tasks; t++) p.run_task(fn, ctx, t, 0);
    return;
  }
  if (n_tasks > kMaxTasksPerJob) {
    for (int base = 0; base < n_tasks; base += kMaxTasksPerJob) {
      Slice s{fn, ctx, base};
      const int left = n_tasks - base;
      run(left < kMaxTasksPerJob ? left : kMaxTasksPerJob, run_slice, &s);
    }
    return;
  }
  std::lock_guard<std::mutex> lock(p.run_mu);
  p.fn = fn;
  p.ctx = ctx;
  p.tasks_done.store(0, std::memory_order_relaxed);
  p.publish(n_tasks);
  t_in_task = true;
  p.take_tasks(generation_of(p.cursor.load()), 0);
  t_in_task = false;
  p.wait_for_tasks(n_tasks);
}

bool ThreadPool::take_fault() { return impl_->faulted.exchange(false); }

int physical_cores() {
  int count = 0;
#if defined(__linux__)
  // Unique (package, core) pairs among the CPUs this process may run on.
  cpu_set_t allowed;
  const bool have_mask = sched_getaffinity(0, sizeof(allowed), &allowed) == 0;
  std::set<std::pair<int, int>> cores;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (have_mask && !CPU_ISSET(cpu, &allowed)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(dir + "physical_package_id"), core(dir + "core_id");
    int p = -1, c = -1;
    if (!(pkg >> p) || !(core >> c)) {
      if (!have_mask) break;  // CPUs are numbered densely when we cannot ask for the mask
      continue;
    }
    cores.insert({p, c});
  }
  count = static_cast<int>(cores.size());
#elif defined(_WIN32)
  // One variable-size RelationProcessorCore record per physical core, across all processor groups.
  using Record = SYSTEM_LOGICAL_PROCESSOR_INFORMATION_EX;
  DWORD bytes = 0;
  GetLogicalProcessorInformationEx(RelationProcessorCore, nullptr, &bytes);
  std::vector<char> buf(bytes);
  if (bytes && GetLogicalProcessorInformationEx(RelationProcessorCore, reinterpret_cast<Record*>(buf.data()), &bytes)) {
    for (DWORD at = 0; at < bytes; at += reinterpret_cast<const Record*>(buf.data() + at)->Size) count++;
  }
#elif defined(__APPLE__)
  int cores = 0;
  size_t size = sizeof(cores);
  if (sysctlbyname("hw.physicalcpu", &cores, &size, nullptr, 0) == 0) count = cores;
#endif
  if (count > 0) return count;
  const unsigned n = std::thread::hardware_concurrency();
  return n ? static_cast<int>(n) : 1;
}

}  // namespace pg
