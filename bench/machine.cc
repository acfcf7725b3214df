// Machine limits probe, compiled at bench time by bench/machine.ts (g++ -O2 -march=native -pthread).
//
//   machine <threads> <bandwidth MiB>
//
// Prints one JSON object:
//   fma_gflops      FP32 FMA peak with `threads` threads (independent FMA chains, widest vector the
//                   compiler targets: AVX-512, AVX2+FMA, NEON or scalar)
//   fma_gflops_1t   the same with one thread
//   fma_gflops_core_cpu  one core's FMA rate over its own CPU time: the per-core peak even when other
//                   processes share the cores (the wall-clock figures then drop, this one does not)
//   read_gbps       memory read bandwidth with `threads` threads, 4 streams each, over a buffer far
//                   larger than the last-level cache
//   read_gbps_1t    the same with one thread
// Each figure is the best of several repetitions (the machine may be shared).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs body(thread) on `threads` threads started together; returns the wall time of the slowest.
template <typename Body>
double timed_parallel(int threads, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++)
    pool.emplace_back([&, t] {
      ready++;
      while (!go.load()) {
      }
      body(t);
    });
  while (ready.load() < threads) {
  }
  const double t0 = now_s();
  go = true;
  for (auto& th : pool) th.join();
  return now_s() - t0;
}

// ---- FMA peak: 12 independent accumulator chains (covers latency 4 x 2 pipes, plus margin) ----
constexpr int kChains = 12;

#if defined(__AVX512F__)
constexpr int kLanes = 16;
float fma_loop(long iters, float seed) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = _mm512_set1_ps(seed + i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < kChains; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 s = acc[0];
  for (int i = 1; i < kChains; i++) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr int kLanes = 8;
float fma_loop(long iters, float seed) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = _mm256_set1_ps(seed + i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < kChains; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 s = acc[0];
  for (int i = 1; i < kChains; i++) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}
#elif defined(__ARM_NEON)
constexpr int kLanes = 4;
float fma_loop(long iters, float seed) {
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = vdupq_n_f32(seed + i);
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-7f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < kChains; i++) acc[i] = vfmaq_f32(b, acc[i], a);
  float32x4_t s = acc[0];
  for (int i = 1; i < kChains; i++) s = vaddq_f32(s, acc[i]);
  return vaddvq_f32(s);
}
#else
constexpr int kLanes = 1;
float fma_loop(long iters, float seed) {
  float acc[kChains];
  for (int i = 0; i < kChains; i++) acc[i] = seed + i;
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < kChains; i++) acc[i] = acc[i] * 0.999999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < kChains; i++) s += acc[i];
  return s;
}
#endif

volatile float g_sink;

double thread_cpu_s() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// GFLOP/s over wall time with `threads` threads; `per_core` receives the best rate of one thread
// over its own CPU time (what a core delivers while it runs, whatever else shares the machine).
double fma_gflops(int threads, double* per_core) {
  const long iters = 20'000'000;  // ~0.1-0.2 s per thread
  const double flops = 2.0 * kLanes * kChains * iters;
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    std::vector<float> sinks(threads);
    std::vector<double> cpu(threads);
    const double t = timed_parallel(threads, [&](int th) {
      const double c0 = thread_cpu_s();
      sinks[th] = fma_loop(iters, 1.0f + th);
      cpu[th] = thread_cpu_s() - c0;
    });
    for (float s : sinks) g_sink = s;
    best = std::max(best, flops * threads / t / 1e9);
    for (double c : cpu) *per_core = std::max(*per_core, flops / c / 1e9);
  }
  return best;
}

// ---- read bandwidth: each thread sums its contiguous share through 4 interleaved streams ----
float read_range(const float* p, size_t n) {
#if defined(__AVX2__) || defined(__AVX512F__)
  const size_t quarter = n / 4 / 32 * 32;
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  const float *a = p, *b = p + quarter, *c = p + 2 * quarter, *d = p + 3 * quarter;
  for (size_t i = 0; i < quarter; i += 32) {
    for (int j = 0; j < 32; j += 8) {
      s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i + j));
      s1 = _mm256_add_ps(s1, _mm256_load_ps(b + i + j));
      s2 = _mm256_add_ps(s2, _mm256_load_ps(c + i + j));
      s3 = _mm256_add_ps(s3, _mm256_load_ps(d + i + j));
    }
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
#else
  const size_t quarter = n / 4;
  float s[16] = {0};
  for (size_t i = 0; i < quarter; i += 4)
    for (int q = 0; q < 4; q++)
      for (int j = 0; j < 4; j++) s[q * 4 + j] += p[q * quarter + i + j];
  float t = 0;
  for (float v : s) t += v;
  return t;
#endif
}

double read_gbps(int threads, const float* buf, size_t n) {
  const size_t per_thread = n / threads / 256 * 256;
  double best = 0;
  for (int rep = 0; rep < 5; rep++) {
    std::vector<float> sinks(threads);
    const double t = timed_parallel(threads, [&](int th) { sinks[th] = read_range(buf + th * per_thread, per_thread); });
    for (float s : sinks) g_sink = s;
    best = std::max(best, per_thread * threads * sizeof(float) / t / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::max(1, atoi(argv[1])) : 2;
  const size_t mib = argc > 2 ? std::max(64, atoi(argv[2])) : 512;
  const size_t n = mib * 1024 * 1024 / sizeof(float);
  float* buf = static_cast<float*>(std::aligned_alloc(64, n * sizeof(float)));
  if (!buf) {
    std::fprintf(stderr, "cannot allocate %zu MiB\n", mib);
    return 1;
  }
  // First touch, in parallel (fresh pages are slow to fault in on some VMs).
  timed_parallel(threads, [&](int th) {
    const size_t per = n / threads;
    for (size_t i = th * per; i < (th + 1) * per; i++) buf[i] = 1.0f;
  });
  double core = 0;
  const double f1 = fma_gflops(1, &core), fn = fma_gflops(threads, &core);
  const double r1 = read_gbps(1, buf, n), rn = read_gbps(threads, buf, n);
  std::printf(
      "{\"threads\": %d, \"lanes\": %d, \"fma_gflops\": %.2f, \"fma_gflops_1t\": %.2f, "
      "\"fma_gflops_core_cpu\": %.2f, \"read_gbps\": %.2f, \"read_gbps_1t\": %.2f, \"buffer_mib\": %zu}\n",
      threads, kLanes, fn, f1, core, rn, r1, mib);
  std::free(buf);
  return 0;
}
