// Machine limits probe, compiled at bench time by bench/machine.ts (g++ -O3 -march=native -pthread).
//
//   machine <threads> <bandwidth MiB>
//
// Prints one JSON object:
//   fma_gflops      FP32 FMA peak with `threads` threads (independent FMA chains, widest vector the
//                   compiler targets: AVX-512, AVX2+FMA, NEON or scalar)
//   fma_gflops_1t   the same with one thread
//   fma_gflops_core_cpu  one core's FMA rate over its own CPU time: the per-core peak even when other
//                   processes share the cores (the wall-clock figures then drop, this one does not)
//   read_gbps       memory read bandwidth with `threads` threads over a buffer far larger than the
//                   last-level cache: each thread sums its contiguous share with plain (temporal)
//                   vector loads, split into S sequential streams far apart, read side by side; the
//                   best over S = 1, 2, 4, 8 (one stream per thread leaves bandwidth unused: the
//                   hardware keeps too few requests in flight for it; too many streams thrash the
//                   prefetchers)
//   read_streams    the S that gave read_gbps
//   read_gbps_1t    the same with one thread (best S)
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

// ---- read bandwidth: each thread sums its contiguous share through S interleaved streams ----
template <int S>
float read_range(const float* p, size_t n) {
#if defined(__AVX2__) || defined(__AVX512F__)
  const size_t part = n / S / 32 * 32;
  __m256 sum[S];
  for (int s = 0; s < S; s++) sum[s] = _mm256_setzero_ps();
  for (size_t i = 0; i < part; i += 32) {
    for (int j = 0; j < 32; j += 8)
      for (int s = 0; s < S; s++) sum[s] = _mm256_add_ps(sum[s], _mm256_load_ps(p + s * part + i + j));
  }
  __m256 t = sum[0];
  for (int s = 1; s < S; s++) t = _mm256_add_ps(t, sum[s]);
  float out[8];
  _mm256_storeu_ps(out, t);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
#else
  const size_t part = n / S / 4 * 4;
  float sum[S][4] = {};
  for (size_t i = 0; i < part; i += 4)
    for (int s = 0; s < S; s++)
      for (int j = 0; j < 4; j++) sum[s][j] += p[s * part + i + j];
  float t = 0;
  for (int s = 0; s < S; s++)
    for (int j = 0; j < 4; j++) t += sum[s][j];
  return t;
#endif
}

template <int S>
double read_gbps_streams(int threads, const float* buf, size_t n) {
  const size_t per_thread = n / threads / 256 * 256;
  double best = 0;
  for (int rep = 0; rep < 4; rep++) {
    std::vector<float> sinks(threads);
    const double t =
        timed_parallel(threads, [&](int th) { sinks[th] = read_range<S>(buf + th * per_thread, per_thread); });
    for (float s : sinks) g_sink = s;
    best = std::max(best, per_thread * threads * sizeof(float) / t / 1e9);
  }
  return best;
}

// Best over the stream counts; `streams` receives the count that gave it.
double read_gbps(int threads, const float* buf, size_t n, int* streams) {
  const double by_streams[4] = {read_gbps_streams<1>(threads, buf, n), read_gbps_streams<2>(threads, buf, n),
                                read_gbps_streams<4>(threads, buf, n), read_gbps_streams<8>(threads, buf, n)};
  int best = 0;
  for (int i = 1; i < 4; i++)
    if (by_streams[i] > by_streams[best]) best = i;
  *streams = 1 << best;
  return by_streams[best];
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
  int streams_1t = 0, streams = 0;
  const double r1 = read_gbps(1, buf, n, &streams_1t), rn = read_gbps(threads, buf, n, &streams);
  std::printf(
      "{\"threads\": %d, \"lanes\": %d, \"fma_gflops\": %.2f, \"fma_gflops_1t\": %.2f, "
      "\"fma_gflops_core_cpu\": %.2f, \"read_gbps\": %.2f, \"read_streams\": %d, \"read_gbps_1t\": %.2f, "
      "\"buffer_mib\": %zu}\n",
      threads, kLanes, fn, f1, core, rn, streams, r1, mib);
  std::free(buf);
  return 0;
}
