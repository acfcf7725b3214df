// The kernel table: one instance per SIMD variant, chosen once from the CPU's features.
// Model code (native/model/) calls kernels only through a KernelTable pointer.
//
// Each variant lives in its own directory (native/kernels/<isa>/) and is compiled with that
// ISA's flags. Code in those directories must stay inside its own namespace (pg::<isa>) and must
// not instantiate templates or inline functions shared with other translation units
// (std::function, std::vector members, std::max, ...): the linker keeps one copy of such code,
// possibly the AVX-512 one, and the scalar path would then fault on older CPUs.
//
// Conventions: activations are F32, row-major, with explicit row strides (in elements).
// Weights are used in place from the mmapped GGUF in its dim order: a weight of PyTorch shape
// [m, k] has ggml dims [k, m], i.e. m rows of k contiguous elements of type `wtype`, stored as
// weight_types.h says.
#pragma once

#include <cstddef>
#include <cstdint>

#include "scratch.h"
#include "weight_types.h"

namespace pg {

class ThreadPool;

enum MaskMode : int32_t {
  MASK_FULL = 0,    // every query sees every key (vision tower)
  MASK_PREFIX = 2,  // keys at positions < prefix_len are seen by all; causal after (PaliGemma;
                    // prefix_len 0 is plain causal attention)
};

// y[n, m] = x[n, k] · w[m, k]ᵀ (+ bias[m] when bias != nullptr). x and y are F32 with row strides
// ldx / ldy (elements); w is m rows of k elements of type wtype, used in place. y must not overlap
// x, w or bias. wtype must be a type of weight_types.h (callers check it: the kernels do not).
//
// GEMM only, `geglu` set: the up projection of a GeGLU folded into its gate. y holds the gate on
// entry and gets geglu(gate, x · wᵀ (+ bias)) from that function (the table's geglu kernel: the
// bits of the product and the fold done apart), called on row pieces of y as the GEMM finishes
// them, so that the up product needs no buffer of its own. (The GEMV does not take it: a decode
// step's few rows of up product are no memory to save.)
struct MatmulArgs {
  const float* x;
  size_t ldx;
  const void* w;
  DType wtype;
  const float* bias;
  float* y;
  size_t ldy;
  size_t n, k, m;
  void (*geglu)(const float* gate, const float* up, float* y, size_t n) = nullptr;
};

// One weight type's kernels in one variant: a row of the variant's kernel rows, which list every
// type of weight_types.h in the same order (checked at compile time; see weight_types.h on adding
// a type).
struct TypeKernels {
  DType type;
  // out[0, n) = the first n elements of `row` widened to F32 (n a multiple of the type's block).
  void (*to_f32)(const void* row, size_t n, float* out);
  void (*gemm)(ThreadPool* pool, const MatmulArgs& a);
  void (*gemv)(ThreadPool* pool, const MatmulArgs& a);
};

struct AttentionShape {
  int n_q;         // query rows
  int n_kv;        // key/value rows (positions 0..n_kv-1)
  int n_heads;     // query heads
  int n_kv_heads;  // key/value heads; n_heads % n_kv_heads == 0 (query head h uses kv head h / (n_heads / n_kv_heads))
  int head_dim;
  size_t q_stride;    // elements between query rows   (>= n_heads * head_dim)
  size_t kv_stride;   // elements between key rows and between value rows (>= n_kv_heads * head_dim)
  size_t out_stride;  // elements between output rows  (>= n_heads * head_dim)
  MaskMode mask;
  int prefix_len;  // MASK_PREFIX only
  int q_pos0;      // position of query row 0 (queries are at q_pos0 .. q_pos0 + n_q - 1)
  float scale;     // multiplies q·k before softmax (usually 1/sqrt(head_dim))
};

struct KernelTable {
  const char* name;  // "scalar", "avx2", "avx512", "neon"

  // --- matrix multiply (MatmulArgs), through the weight type's row of kernels ---
  // Many rows (prefill, vision): blocked/packed GEMM.
  void (*gemm)(ThreadPool* pool, const MatmulArgs& a);
  // One or a few rows (decoding): streaming GEMV, each weight byte read from memory once whatever n
  // is; each row of y gets the same bits as it would alone (n = 1).
  void (*gemv)(ThreadPool* pool, const MatmulArgs& a);

  // --- attention: out = softmax(scale · q kᵀ + mask) v, per head; q/k/v/out as AttentionShape says ---
  void (*attention)(ThreadPool* pool, const AttentionShape& s, const float* q, const float* k, const float* v,
                    float* out);

  // --- Conv2d patch embedding, kernel = stride = patch, as patch gather + GEMM ---
  // pixels: [channels, height, width] (CHW). weight: ggml dims [patch, patch, channels, hidden]
  // (PyTorch [hidden, channels, patch, patch]). out: [(height/patch) * (width/patch), hidden], patches
  // in row-major order of the patch grid.
  void (*patch_embed)(ThreadPool* pool, const float* pixels, int channels, int height, int width, int patch,
                      const void* weight, DType wtype, const float* bias, float* out, int hidden);

  // --- row-wise norms over `dim`, n rows with stride ld; y may equal x ---
  void (*layernorm)(const float* x, size_t ldx, const float* w, const float* b, float* y, size_t ldy, size_t n,
                    size_t dim, float eps);
  // y = x / sqrt(mean(x²) + eps) * w  (GGUF Gemma norm weights already include the +1)
  void (*rmsnorm)(const float* x, size_t ldx, const float* w, float* y, size_t ldy, size_t n, size_t dim, float eps);

  // --- elementwise on n contiguous floats (in place where x and y alias) ---
  void (*gelu_tanh)(const float* x, float* y, size_t n);
  void (*geglu)(const float* gate, const float* up, float* y, size_t n);  // y = gelu_tanh(gate) * up
  void (*add)(const float* a, const float* b, float* y, size_t n);
  void (*scale)(const float* x, float s, float* y, size_t n);

  // NeoX RoPE (rotate-half) in place: n rows with stride ld, each holding n_heads heads of head_dim;
  // row i rotated by positions[i] with frequencies theta^(-2j/head_dim).
  void (*rope_neox)(float* x, size_t ld, size_t n, int n_heads, int head_dim, const int32_t* positions, float theta);

  // out[i, :] = table row ids[i] widened to F32 (table: rows of `dim` elements of type `type`)
  void (*embed_rows)(const void* table, DType type, size_t dim, const int32_t* ids, size_t n, float* out,
                     size_t ldo);
};

namespace scalar { const KernelTable* table(); }
#if defined(__x86_64__) || defined(_M_X64)
namespace avx2 { const KernelTable* table(); }
namespace avx512 { const KernelTable* table(); }
#endif
#if defined(__aarch64__)
namespace neon { const KernelTable* table(); }
#endif

}  // namespace pg
