// Every SIMD variant of the quantized kernels (native/kernels/quant_dot.h: dot microkernels, GEMM and
// GEMV) against the scalar reference, built and run by test/quant-dot.test.ts (x86) and
// scripts/check-neon.sh --run (arm64 under qemu). Prints one line per variant; exits 1 on a mismatch,
// naming it (the first 20).
//
// Checks, on random and adversarial data, for k from one block to 64 super-blocks and 1..8 rows:
//  - the activation quantizers give the bytes of the scalar reference (ties, zero blocks, sign of the
//    first largest element);
//  - every scale 1 and the sum of |products| below 2^24: the dots equal the scalar reference exactly
//    (so the integer sums are exact);
//  - any scales: Q4_K / Q6_K dots equal the reference bit for bit, the 32-block dots are within
//    (blocks + 16) · 2^-23 · M of it (M: the sum of |products|);
//  - a row in a batch of n gets the bits it gets alone, whatever x_stride and out_stride are;
//  - GEMM (every type, odd shapes, several k slices, bias, strides): the scalar reference's bits, on 1
//    and on 3 threads;
//  - GEMV: within the dots' bound of the reference (bit-exact for the k-quants), each row of x the
//    bits it gets alone, the same bits on 1 and 3 threads.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../native/cpu/features.h"
#include "../../native/kernels/quant_dot.h"
#include "../../native/quant/quantize.h"
#include "../../native/threadpool.h"

using namespace pg;

namespace {

int failures = 0;
long checks = 0;
long exact_checks = 0;  // of them, comparisons that had to be bit-exact

void fail(const std::string& what) {
  if (failures++ < 20) std::printf("FAIL %s\n", what.c_str());
}

struct Pair {
  const char* name;
  quant::QuantType weight;
  bool k_quant;  // activations Q8_K (else Q8_0)
  QuantDotFn QuantKernels::*dot;
  size_t matmul;  // index in QuantKernels::matmul
};

const Pair kPairs[] = {
    {"q8_0 x q8_0", quant::QT_Q8_0, false, &QuantKernels::dot_q8_0_q8_0, 0},
    {"q4_0 x q8_0", quant::QT_Q4_0, false, &QuantKernels::dot_q4_0_q8_0, 1},
    {"q5_0 x q8_0", quant::QT_Q5_0, false, &QuantKernels::dot_q5_0_q8_0, 2},
    {"q4_K x q8_K", quant::QT_Q4_K, true, &QuantKernels::dot_q4_K_q8_K, 3},
    {"q6_K x q8_K", quant::QT_Q6_K, true, &QuantKernels::dot_q6_K_q8_K, 4},
};

std::mt19937 rng(12345);

float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); }

// A row of k floats of one of several kinds (kind chosen by `kind`).
std::vector<float> make_row(size_t k, int kind) {
  std::vector<float> x(k);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (size_t i = 0; i < k; i++) {
    switch (kind % 7) {
      case 0: x[i] = normal(rng); break;
      case 1: x[i] = 1e-3f * normal(rng) + (i % 97 == 0 ? 40.0f : 0.0f); break;        // outliers
      case 2: x[i] = static_cast<float>(static_cast<int>(i % 255) - 127) + 0.5f; break;  // ties after scaling
      case 3: x[i] = (i / 32) % 3 == 0 ? 0.0f : normal(rng); break;                      // zero blocks
      case 4: x[i] = (i % 2 ? -1.0f : 1.0f) * 3.0f; break;                               // ±max, first one decides
      case 5: x[i] = 65504.0f * uniform(-1, 1); break;
      default: x[i] = 1e-30f * normal(rng); break;                                       // tiny
    }
  }
  return x;
}

size_t block_bytes(quant::QuantType t) { return quant::type_traits(t)->block_bytes; }
size_t block_elements(quant::QuantType t) { return quant::type_traits(t)->block_elements; }

// Offsets of the F16 scale fields of a weight block.
std::vector<size_t> f16_fields(quant::QuantType t) {
  switch (t) {
    case quant::QT_Q4_K: return {0, 2};
    case quant::QT_Q6_K: return {offsetof(quant::BlockQ6_K, d)};
    default: return {0};
  }
}

void set_half(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

// A weight row: quantized from floats, or random bytes with finite random scales (every quant pattern,
// Q8_0's -128 and Q6_K's scale -128 included). With `unit`, every scale is 1.
std::vector<uint8_t> make_weights(quant::QuantType t, size_t k, bool raw, bool unit) {
  std::vector<uint8_t> w(k / block_elements(t) * block_bytes(t));
  if (raw) {
    for (auto& b : w) b = static_cast<uint8_t>(rng());
  } else {
    quant::type_traits(t)->quantize_row(make_row(k, static_cast<int>(rng() % 7)).data(), w.data(), k);
  }
  if (raw || unit)
    for (size_t b = 0; b < w.size() / block_bytes(t); b++)
      for (size_t off : f16_fields(t)) set_half(&w[b * block_bytes(t) + off], unit ? 0x3C00 : quant::f32_to_f16(uniform(-2, 2)));
  return w;
}

// n activation rows, `stride` bytes apart (>= row bytes), quantized by `kernels`.
std::vector<uint8_t> make_activations(const QuantKernels& kernels, bool k_quant, size_t k, int n, size_t stride, bool unit) {
  std::vector<uint8_t> x(stride * n, 0xEE);
  for (int r = 0; r < n; r++) {
    const std::vector<float> row = make_row(k, static_cast<int>(rng() % 7));
    uint8_t* dst = &x[r * stride];
    if (k_quant) {
      kernels.quantize_q8_K(row.data(), dst, k);
      if (unit)
        for (size_t b = 0; b < k / 256; b++) {
          const float one = 1.0f;
          std::memcpy(dst + b * sizeof(quant::BlockQ8_K), &one, 4);
        }
    } else {
      kernels.quantize_q8_0(row.data(), dst, k);
      if (unit)
        for (size_t b = 0; b < k / 32; b++) set_half(dst + b * 34, 0x3C00);
    }
  }
  return x;
}

// M: Σ |w_i · x_i| over the dequantized values (every block's |scale product| times its sum of |products|).
double magnitude(quant::QuantType t, bool k_quant, const uint8_t* w, const uint8_t* x, size_t k) {
  std::vector<float> wf(k), xf(k);
  quant::type_traits(t)->dequantize_row(w, wf.data(), k);
  quant::type_traits(k_quant ? quant::QT_Q8_K : quant::QT_Q8_0)->dequantize_row(x, xf.data(), k);
  double m = 0;
  for (size_t i = 0; i < k; i++) m += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  return m;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

void check_quantizers(const QuantKernels& ref, const QuantKernels& v) {
  for (int trial = 0; trial < 200; trial++) {
    const size_t k = 256 * (1 + trial % 5);
    const std::vector<float> row = make_row(k, trial);
    std::vector<uint8_t> a(k / 32 * 34), b(a.size());
    ref.quantize_q8_0(row.data(), a.data(), k);
    v.quantize_q8_0(row.data(), b.data(), k);
    checks++;
    if (a != b) fail(std::string(v.name) + ": quantize_q8_0 differs from the reference, row kind " + std::to_string(trial % 7));
    std::vector<uint8_t> c(k / 256 * sizeof(quant::BlockQ8_K)), d(c.size());
    ref.quantize_q8_K(row.data(), c.data(), k);
    v.quantize_q8_K(row.data(), d.data(), k);
    checks++;
    if (c != d) fail(std::string(v.name) + ": quantize_q8_K differs from the reference, row kind " + std::to_string(trial % 7));
  }
}

void check_dots(const QuantKernels& ref, const QuantKernels& v) {
  for (const Pair& p : kPairs) {
    const size_t unit_k = p.k_quant ? 256 : 32;
    for (int trial = 0; trial < 120; trial++) {
      const size_t k = unit_k * (1 + (trial * 7) % (p.k_quant ? 64 : 130));
      const int n = 1 + trial % kQuantDotMaxRows;
      const bool unit = trial % 3 == 0, raw = trial % 2 == 1;
      const size_t row_bytes = k / unit_k * (p.k_quant ? sizeof(quant::BlockQ8_K) : 34);
      const size_t stride = row_bytes + 64 * (trial % 2);
      const std::vector<uint8_t> w = make_weights(p.weight, k, raw, unit);
      const std::vector<uint8_t> x = make_activations(v, p.k_quant, k, n, stride, unit);
      const size_t out_stride = 1 + trial % 3;
      std::vector<float> want(n), got(n * out_stride, -1.0f), alone(1);
      (ref.*p.dot)(k, w.data(), x.data(), stride, n, want.data(), 1);
      (v.*p.dot)(k, w.data(), x.data(), stride, n, got.data(), out_stride);
      const std::string where = std::string(v.name) + " " + p.name + " k=" + std::to_string(k) + " rows=" +
                                std::to_string(n) + (unit ? " unit scales" : raw ? " raw blocks" : " quantized rows");
      for (int r = 0; r < n; r++) {
        const float g = got[r * out_stride];
        checks++;
        // With unit scales and M < 2^24 every partial sum is an exactly representable integer, so the
        // float accumulation cannot round: any difference is an integer error.
        const double m = magnitude(p.weight, p.k_quant, w.data(), &x[r * stride], k);
        if (p.k_quant || (unit && m < 16777216.0)) {
          exact_checks++;
          if (!same_bits(g, want[r])) fail(where + ": row " + std::to_string(r) + " " + std::to_string(g) + " != reference " + std::to_string(want[r]));
        } else {
          const double blocks = static_cast<double>(k / unit_k);
          const double bound = (blocks + 16) * std::ldexp(1.0, -23) * m;
          if (!(std::fabs(static_cast<double>(g) - want[r]) <= bound))
            fail(where + ": row " + std::to_string(r) + " off the reference by " + std::to_string(std::fabs(g - want[r])) + " > bound " + std::to_string(bound));
        }
        (v.*p.dot)(k, w.data(), &x[r * stride], stride, 1, alone.data(), 1);
        checks++;
        if (!same_bits(alone[0], g)) fail(where + ": row " + std::to_string(r) + " alone differs from the same row in the batch");
      }
      if (out_stride > 1)
        for (size_t i = 0; i < got.size(); i++)
          if (i % out_stride != 0 && got[i] != -1.0f) fail(where + ": wrote between out_stride slots");
    }
  }
}

// The GEMM and GEMV of each type against the scalar reference (see the header for what is checked).
void check_matmuls(const QuantKernels& ref, const QuantKernels& v, ThreadPool& one, ThreadPool& three) {
  struct Shape {
    size_t n, blocks, m;
  };
  // n: 1 row to several tiles and row blocks; k: one block to several slices of 512; m: partial panels.
  const Shape shapes[] = {{1, 1, 1}, {3, 3, 17}, {7, 17, 33}, {13, 2, 70}, {40, 9, 5}, {66, 5, 40}, {9, 24, 50}, {300, 3, 37}};
  for (const Pair& p : kPairs) {
    const QuantMatmul& rm = ref.matmul[p.matmul];
    const QuantMatmul& vm = v.matmul[p.matmul];
    if (rm.type != static_cast<int>(p.weight) || vm.type != static_cast<int>(p.weight)) fail(std::string(v.name) + ": matmul rows out of order");
    const size_t unit_k = p.k_quant ? 256 : 32;
    int trial = 0;
    for (const Shape& sh : shapes) {
      for (int kind = 0; kind < 2; kind++, trial++) {
        const size_t n = sh.n, k = unit_k * (p.k_quant ? 1 + sh.blocks % 5 : sh.blocks), m = sh.m;
        const bool raw = kind == 1, with_bias = trial % 2 == 0;
        const size_t ldx = k + (trial % 3 == 0 ? 5 : 0), ldy = m + (trial % 4 == 1 ? 3 : 0);
        std::vector<uint8_t> w;
        for (size_t j = 0; j < m; j++) {
          const std::vector<uint8_t> row = make_weights(p.weight, k, raw, false);
          w.insert(w.end(), row.begin(), row.end());
        }
        std::vector<float> x(n * ldx, 0.0f), bias(m);
        for (size_t i = 0; i < n; i++) {
          const std::vector<float> row = make_row(k, static_cast<int>(rng() % 6));  // kind 6 (tiny) underflows the scales' products
          std::copy(row.begin(), row.end(), x.begin() + i * ldx);
        }
        for (float& b : bias) b = uniform(-1, 1);
        MatmulArgs a{x.data(), ldx, w.data(), rm.type, with_bias ? bias.data() : nullptr, nullptr, ldy, n, k, m};
        const std::string where = std::string(v.name) + " " + p.name + " n=" + std::to_string(n) + " k=" + std::to_string(k) +
                                  " m=" + std::to_string(m) + (raw ? " raw blocks" : " quantized rows");
        const auto run = [&](void (*fn)(ThreadPool*, const MatmulArgs&), ThreadPool& pool, size_t rows, const float* xs) {
          std::vector<float> y((rows - 1) * ldy + m, -7.0f);
          MatmulArgs b = a;
          b.x = xs;
          b.n = rows;
          b.y = y.data();
          fn(&pool, b);
          return y;
        };
        const std::vector<float> want = run(rm.gemm, one, n, x.data());
        // GEMM: the reference's bits, whatever the thread count; the gaps between rows untouched.
        for (ThreadPool* pool : {&one, &three}) {
          const std::vector<float> got = run(vm.gemm, *pool, n, x.data());
          checks++;
          exact_checks++;
          for (size_t i = 0; i < got.size(); i++) {
            if (!same_bits(got[i], want[i])) {
              fail(where + ": gemm y[" + std::to_string(i / ldy) + ", " + std::to_string(i % ldy) + "] = " + std::to_string(got[i]) +
                   ", reference " + std::to_string(want[i]) + " (" + std::to_string(pool->size()) + " threads)");
              break;
            }
          }
        }
        // GEMV: within the dots' bound (bit-exact for the k-quants); a row alone as in the batch.
        const std::vector<float> gv = run(vm.gemv, one, n, x.data());
        checks++;
        if (run(vm.gemv, three, n, x.data()) != gv) fail(where + ": gemv differs between 1 and 3 threads");
        const size_t w_row = k / unit_k * block_bytes(p.weight);
        std::vector<uint8_t> xq(k / unit_k * (p.k_quant ? sizeof(quant::BlockQ8_K) : 34));
        for (size_t i = 0; i < n; i++) {
          (p.k_quant ? ref.quantize_q8_K : ref.quantize_q8_0)(&x[i * ldx], xq.data(), k);
          for (size_t j = 0; j < m; j++) {
            const float g = gv[i * ldy + j], r = want[i * ldy + j];
            float dot;  // the reference is its dot of the quantized row, plus the bias
            (ref.*p.dot)(k, &w[j * w_row], xq.data(), 0, 1, &dot, 1);
            checks++;
            if (!same_bits(with_bias ? dot + bias[j] : dot, r)) fail(where + ": the reference GEMM is not its dot plus the bias");
            checks++;
            if (p.k_quant) {
              exact_checks++;
              if (!same_bits(g, r)) fail(where + ": gemv differs from the reference at " + std::to_string(i) + ", " + std::to_string(j));
            } else {
              const double mag = magnitude(p.weight, false, &w[j * w_row], xq.data(), k);
              double bound = (static_cast<double>(k / 32) + 16) * std::ldexp(1.0, -23) * mag;
              if (with_bias) bound += std::ldexp(1.0, -23) * (std::fabs(r) + bound);  // the bias added after
              if (!(std::fabs(static_cast<double>(g) - r) <= bound))
                fail(where + ": gemv y[" + std::to_string(i) + ", " + std::to_string(j) + "] = " + std::to_string(g) + ", reference " +
                     std::to_string(r) + ", beyond the bound " + std::to_string(bound));
            }
          }
          if (i % 5 == 0) {  // the row alone
            checks++;
            const std::vector<float> alone = run(vm.gemv, one, 1, &x[i * ldx]);
            if (std::memcmp(alone.data(), &gv[i * ldy], m * sizeof(float)) != 0) fail(where + ": gemv row " + std::to_string(i) + " alone differs");
          }
        }
        for (size_t i = 0; i + 1 < n; i++)
          for (size_t j = m; j < ldy; j++)
            if (gv[i * ldy + j] != -7.0f) fail(where + ": gemv wrote between rows");
      }
    }
  }
}

}  // namespace

int main() {
  struct Variant {
    const char* name;
    const QuantKernels* (*kernels)();
    bool supported;
    const char* needs;
  };
  const CpuFeatures& f = cpu_features();
  (void)f;
  const Variant variants[] = {
#if defined(__x86_64__)
      {"avx2", avx2::quant_kernels, f.avx2 && f.fma && f.f16c, "AVX2, FMA, F16C"},
      {"avx512", avx512::quant_kernels, f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c, "AVX-512 F/BW/VL/DQ"},
      {"avx512vnni", avx512vnni::quant_kernels, f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma && f.f16c, "AVX-512 VNNI"},
#endif
#if defined(__aarch64__)
      {"neon", neon::quant_kernels, true, "NEON"},
      {"neon_dotprod", neon_dotprod::quant_kernels, f.dotprod, "the dot-product extension"},
#endif
  };
  const QuantKernels& ref = *scalar::quant_kernels();
  ThreadPool one(1), three(3);
  for (const Variant& v : variants) {
    if (!v.supported) {
      std::printf("skipped %s: the CPU lacks %s\n", v.name, v.needs);
      continue;
    }
    const long before = checks, exact_before = exact_checks;
    const int failed_before = failures;
    check_quantizers(ref, *v.kernels());
    check_dots(ref, *v.kernels());
    check_matmuls(ref, *v.kernels(), one, three);
    std::printf("%s %s: %ld checks, %ld of them bit-exact\n", failures == failed_before ? "ok" : "FAILED", v.name, checks - before,
                exact_checks - exact_before);
  }
  return failures ? 1 : 0;
}
