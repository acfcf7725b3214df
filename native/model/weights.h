// Weights as they sit in a mapped GGUF file, and the matmul helper the model loops use.
#pragma once

#include <cstddef>
#include <cstdint>

#include "../kernels/kernels.h"

namespace pg {

// A tensor inside a mapped file. ne[0] is contiguous (ggml order): a PyTorch [m, k] weight has
// ne = {k, m}: `rows()` rows of `cols()` elements.
struct Weight {
  const void* data = nullptr;
  DType type = DT_F32;
  int64_t ne[4] = {1, 1, 1, 1};

  size_t cols() const { return static_cast<size_t>(ne[0]); }
  size_t rows() const { return static_cast<size_t>(ne[1] * ne[2] * ne[3]); }
  const float* f32() const { return static_cast<const float*>(data); }
};

// Rows up to which the streaming GEMV beats the GEMM (measured on Zen 3 with F16 weights: at 8 rows
// 10-14 GB/s of weights against 6-9 for the GEMM, whose panel packing does not pay for so few rows).
constexpr size_t kMaxGemvRows = 8;

// The arguments of y[n, w.rows()] = x[n, w.cols()] · wᵀ (+ bias).
inline MatmulArgs matmul_args(const float* x, size_t ldx, const Weight& w, const float* bias, float* y, size_t ldy,
                              size_t n) {
  return MatmulArgs{x, ldx, w.data, w.type, bias, y, ldy, n, w.cols(), w.rows()};
}

// y[n, w.rows()] = x[n, w.cols()] · wᵀ (+ bias): GEMV for the few rows of a decode step, GEMM otherwise.
inline void matmul(const KernelTable* k, ThreadPool* pool, const float* x, size_t ldx, const Weight& w,
                   const float* bias, float* y, size_t ldy, size_t n) {
  auto fn = n <= kMaxGemvRows ? k->gemv : k->gemm;
  fn(pool, matmul_args(x, ldx, w, bias, y, ldy, n));
}

}  // namespace pg
