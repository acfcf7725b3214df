// Row-wise and elementwise kernels spread over the pool by the model loops. The kernel table keeps
// single-threaded signatures for them; here each call is cut into contiguous ranges of rows (or of
// elements) that the pool threads take. Every row or element is computed by the same code as in a
// single call, so results do not depend on the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/kernels.h"
#include "../threadpool.h"

namespace pg {

// Runs fn(begin, end) over [0, count) in ranges of at least `grain` items, about 4 per pool thread
// (shared out dynamically, so a thread slowed by another process does not hold up the rest). Even a
// single range runs as a pool task (inline, on the calling thread): the model's mapped weights are
// read only inside pool tasks, which the pool guards against a file truncated under the map.
template <class Fn>
void for_ranges(ThreadPool* pool, size_t count, size_t grain, const Fn& fn) {
  if (count == 0) return;
  const size_t threads = pool ? static_cast<size_t>(pool->size()) : 1;
  size_t parts = count / (grain ? grain : 1);
  if (parts > 4 * threads) parts = 4 * threads;
  if (parts < 1) parts = 1;  // one range still goes through the pool: its tasks run under the fault guard
  if (!pool) {
    fn(size_t{0}, count);
    return;
  }
  struct Ctx {
    const Fn* fn;
    size_t count, parts;
  } ctx{&fn, count, parts};
  pool->run(static_cast<int>(parts), [](void* p, int task, int) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const size_t t = static_cast<size_t>(task);
    (*c.fn)(c.count * t / c.parts, c.count * (t + 1) / c.parts);
  }, &ctx);
}

// Rows of a norm or rotation: a few cache lines of work each, so ranges of several rows.
constexpr size_t kRowGrain = 16;
// Elements of an elementwise kernel per range, a multiple of every vector width.
constexpr size_t kElementGrain = 4096;

inline void parallel_rmsnorm(const KernelTable* k, ThreadPool* pool, const float* x, size_t ldx, const float* w,
                           float* y, size_t ldy, size_t n, size_t dim, float eps) {
  for_ranges(pool, n, kRowGrain,
             [&](size_t a, size_t b) { k->rmsnorm(x + a * ldx, ldx, w, y + a * ldy, ldy, b - a, dim, eps); });
}

inline void parallel_layernorm(const KernelTable* k, ThreadPool* pool, const float* x, size_t ldx, const float* w,
                             const float* bias, float* y, size_t ldy, size_t n, size_t dim, float eps) {
  for_ranges(pool, n, kRowGrain,
             [&](size_t a, size_t b) { k->layernorm(x + a * ldx, ldx, w, bias, y + a * ldy, ldy, b - a, dim, eps); });
}

inline void parallel_rope_neox(const KernelTable* k, ThreadPool* pool, float* x, size_t ld, size_t n, int n_heads,
                             int head_dim, const int32_t* positions, float theta) {
  for_ranges(pool, n, kRowGrain,
             [&](size_t a, size_t b) { k->rope_neox(x + a * ld, ld, b - a, n_heads, head_dim, positions + a, theta); });
}

// Elementwise kernels get ranges that start on a multiple of 16 elements: whole vectors of every
// variant, so each element takes the same vector-or-tail path as in one call over all n.
template <class Fn>
void for_element_ranges(ThreadPool* pool, size_t n, const Fn& fn) {
  constexpr size_t kAlign = 16;  // elements: whole vectors of every variant
  const size_t blocks = (n + kAlign - 1) / kAlign;
  for_ranges(pool, blocks, kElementGrain / kAlign, [&](size_t a, size_t b) {
    const size_t begin = a * kAlign, end = b * kAlign < n ? b * kAlign : n;
    fn(begin, end - begin);
  });
}

inline void parallel_add(const KernelTable* k, ThreadPool* pool, const float* a, const float* b, float* y, size_t n) {
  for_element_ranges(pool, n, [&](size_t i, size_t len) { k->add(a + i, b + i, y + i, len); });
}

inline void parallel_geglu(const KernelTable* k, ThreadPool* pool, const float* gate, const float* up, float* y,
                         size_t n) {
  for_element_ranges(pool, n, [&](size_t i, size_t len) { k->geglu(gate + i, up + i, y + i, len); });
}

inline void parallel_gelu_tanh(const KernelTable* k, ThreadPool* pool, const float* x, float* y, size_t n) {
  for_element_ranges(pool, n, [&](size_t i, size_t len) { k->gelu_tanh(x + i, y + i, len); });
}

}  // namespace pg
