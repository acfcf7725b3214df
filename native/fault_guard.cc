#include "fault_guard.h"
#include "static_tls.h"

#if defined(__linux__) || defined(__APPLE__)
#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <cstdint>
#include <mutex>

namespace pg {
namespace {

// Registered mappings, read lock-free by the signal handler: [begin, end) pairs, 0 when free.
constexpr int kMaxRanges = 256;
struct Range {
  std::atomic<uintptr_t> begin{0}, end{0};
};
Range g_ranges[kMaxRanges];

std::mutex g_mu;  // registration and the handler's installation
int g_registered = 0;
struct sigaction g_previous;

struct Guard {
  sigjmp_buf jump;
};
// The innermost guard of this thread, in static TLS: reading it in the signal handler never
// allocates.
PG_STATIC_TLS Guard* t_guard = nullptr;

bool in_mapping(uintptr_t address) {
  for (const Range& r : g_ranges) {
    const uintptr_t begin = r.begin.load(std::memory_order_acquire);
    if (begin != 0 && address >= begin && address < r.end.load(std::memory_order_acquire)) return true;
  }
  return false;
}

void OnSigbus(int sig, siginfo_t* info, void* context) {
  // The mapping first: a thread that never ran a guarded task must not touch t_guard here.
  if (in_mapping(reinterpret_cast<uintptr_t>(info->si_addr))) {
    if (Guard* guard = t_guard) siglongjmp(guard->jump, 1);
  }
  // Not ours: what the previous handler would have done.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) g_previous.sa_sigaction(sig, info, context);
    return;
  }
  if (g_previous.sa_handler == SIG_IGN) return;
  if (g_previous.sa_handler == SIG_DFL) {
    // Back to the default action: a fault repeats on return and kills the process, as it would have;
    // a SIGBUS sent by kill() is raised again.
    sigaction(SIGBUS, &g_previous, nullptr);
    if (info->si_code <= 0) raise(SIGBUS);
    return;
  }
  g_previous.sa_handler(sig);
}

}  // namespace

void register_mapped_range(const void* data, size_t size) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Range& r : g_ranges) {
    if (r.begin.load() != 0) continue;
    r.end.store(reinterpret_cast<uintptr_t>(data) + size);
    r.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    break;  // more than kMaxRanges mapped files: the rest are unguarded
  }
  if (g_registered++ == 0) {
    struct sigaction sa = {};
    sa.sa_sigaction = OnSigbus;
    // SA_NODEFER: the jump out of the handler does not restore the signal mask (sigsetjmp without
    // saving it keeps each guard cheap), so SIGBUS must not be blocked while the handler runs.
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_previous);
  }
}

void unregister_mapped_range(const void* data) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Range& r : g_ranges) {
    if (r.begin.load() != reinterpret_cast<uintptr_t>(data)) continue;
    r.begin.store(0, std::memory_order_release);
    r.end.store(0);
    break;
  }
  if (--g_registered == 0) {
    // Restored only if nobody replaced our handler meanwhile (theirs chains to ours, or not).
    struct sigaction current;
    if (sigaction(SIGBUS, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == OnSigbus)
      sigaction(SIGBUS, &g_previous, nullptr);
  }
}

bool run_guarded(void (*fn)(void*, int, int), void* ctx, int task, int thread) {
  Guard guard;
  Guard* const outer = t_guard;
  if (sigsetjmp(guard.jump, 0) != 0) {
    t_guard = outer;
    return false;
  }
  t_guard = &guard;
  fn(ctx, task, thread);
  t_guard = outer;
  return true;
}

}  // namespace pg

#else  // no SIGBUS on truncated maps to guard against

namespace pg {
void register_mapped_range(const void*, size_t) {}
void unregister_mapped_range(const void*) {}
bool run_guarded(void (*fn)(void*, int, int), void* ctx, int task, int thread) {
  fn(ctx, task, thread);
  return true;
}
}  // namespace pg

#endif
