// The quantized kernels on llama.cpp's block formats: integer dot-product microkernels, and the GEMM
// (prefill, vision) and GEMV (decode) built on them (impl/quant_matmul.inc), which the kernel tables
// reach through the quantized rows of their type kernels (impl/quant_rows.inc).
//
// Activations are quantized on the fly, per row, to Q8_0 (blocks of 32, for Q8_0 / Q4_0 / Q5_0 weights)
// or Q8_K (super-blocks of 256, for Q4_K / Q6_K weights) by the quantizers below, which give the bytes
// of the reference quantizers of native/quant in every variant. A dot call takes ONE weight row and
// up to kQuantDotMaxRows activation rows: each weight block is loaded and unpacked once and used for
// every activation row, the shape a GEMM tile of 4-8 rows wants, and a GEMV calls it with the rows of
// its batch (one row alone gets the same bits as in a batch).
//
// Exactness: within a block, products are summed in exact integer arithmetic in every variant (no
// int16 saturation can occur: Q8_0 / Q8_K activations are in [-127, 127]). The float combination of
// the block sums (scales, accumulation order, FMA) differs between variants: a variant's result is
// within (blocks + 16) · 2^-23 · M of the exact value, M being the sum over blocks of |scale products|
// times the block's sum of |products| (test/native/quant-dot-test.cc checks this bound, and exact
// equality with the scalar reference when every scale is 1).
//
// Variants: scalar (the plain reference), avx2 (vpmaddubsw / vpmaddwd), avx512 (the same on AVX-512
// registers), avx512vnni (vpdpbusd), neon (vmull / vpadal), neon_dotprod (vdotq_s32). Each lives in
// native/kernels/<variant>/quant_dot.cc, compiled with its ISA's flags; the algorithms are written once
// in impl/quant_dot.inc and impl/quant_matmul.inc.
#pragma once

#include <cstddef>

#include "kernels.h"

namespace pg {

// Most activation rows one dot call takes.
constexpr int kQuantDotMaxRows = 8;

// out[r · out_stride] = Σ over the row of w · x_r, for r < n_rows (1..kQuantDotMaxRows): one weight row
// `w` of k elements (blocks of the weight type) and activation rows x_r = x + r · x_stride bytes (blocks
// of the paired activation type). k is a multiple of the weight type's block size.
typedef void (*QuantDotFn)(size_t k, const void* w, const void* x, size_t x_stride, int n_rows, float* out,
                           size_t out_stride);

// The GEMM and GEMV of one quantized weight type (MatmulArgs, kernels.h).
struct QuantMatmul {
  DType type;
  void (*gemm)(ThreadPool* pool, const MatmulArgs& a);
  void (*gemv)(ThreadPool* pool, const MatmulArgs& a);
};

// The quantized weight types, in the order of kWeightTypes (weight_types.h) and of QuantKernels::matmul.
constexpr DType kQuantTypes[] = {DT_Q8_0, DT_Q4_0, DT_Q5_0, DT_Q4_K, DT_Q6_K};
constexpr size_t kQuantTypeCount = sizeof(kQuantTypes) / sizeof(kQuantTypes[0]);

struct QuantKernels {
  const char* name;
  // One F32 row of k elements -> Q8_0 blocks (k % 32 == 0) / Q8_K blocks (k % 256 == 0).
  void (*quantize_q8_0)(const float* x, void* y, size_t k);
  void (*quantize_q8_K)(const float* x, void* y, size_t k);
  QuantDotFn dot_q8_0_q8_0;
  QuantDotFn dot_q4_0_q8_0;
  QuantDotFn dot_q5_0_q8_0;
  QuantDotFn dot_q4_K_q8_K;
  QuantDotFn dot_q6_K_q8_K;
  // GEMM and GEMV per type of kQuantTypes, in order. The scalar variant's are the reference: each output
  // one dot above (n_rows 1), x quantized by the reference quantizer. The SIMD GEMM gives the
  // reference's bits (impl/quant_matmul.inc says why); the SIMD GEMV is the dots above, within their
  // bound, and gives a row of x the bits it gets alone.
  QuantMatmul matmul[kQuantTypeCount];
};

namespace scalar { const QuantKernels* quant_kernels(); }
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 { const QuantKernels* quant_kernels(); }
namespace avx512 { const QuantKernels* quant_kernels(); }
namespace avx512vnni { const QuantKernels* quant_kernels(); }
#endif
#if defined(__aarch64__)
namespace neon { const QuantKernels* quant_kernels(); }
namespace neon_dotprod { const QuantKernels* quant_kernels(); }
#endif

// The best quantized kernels for a kernel-table variant ("scalar", "avx2", "avx512", "neon") on this
// CPU: avx512 takes the VNNI kernels when the CPU has AVX512-VNNI, neon the dot-product ones when it has
// the dot-product extension. nullptr for an unknown name.
const QuantKernels* quant_kernels_for(const char* variant);

}  // namespace pg
