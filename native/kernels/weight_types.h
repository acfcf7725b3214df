// The weight-type table: everything the loader and the kernels know about how a weight is stored,
// in the spirit of ggml's type traits. No other file knows a type's size.
//
// A weight is `rows` rows of `cols` elements (ggml ne0 = cols, contiguous); a row is cols / block
// blocks of block_bytes bytes each. The float types have blocks of one element; a quantized type packs
// a block of 32 or 256 elements with its scales (llama.cpp's layouts, e.g. Q8_0: an F16 scale and 32
// int8 values, 34 bytes).
//
// Adding a weight type:
//   1. its ggml id in DType, and a row in kWeightTypes below: block size in elements, bytes per block,
//      the alignment its loads need, and the type the activations are converted to for its dot
//      products (`activation`: F32 for the float types, which multiply F32 activations as they are;
//      Q8_0 for 32-element blocks and Q8_K for 256-element blocks, quantized on the fly per block);
//   2. a row in every variant's kernel rows (kTypeKernels in native/kernels/impl/matmul.inc, compiled
//      once per ISA, checked against this table at compile time): how to widen a row to F32 (embedding
//      lookups, the reference) and the GEMM and GEMV that read its blocks. A float type instantiates
//      the float algorithm of matmul.inc over a loader of its elements; a quantized type is a
//      quant_type_kernels<> row (impl/quant_rows.inc) reaching its GEMM and GEMV in quant_dot.h's
//      kQuantTypes and impl/quant_matmul.inc (its block decoder and dot in impl/quant_dot.inc). The
//      scalar variant's row is the reference the SIMD rows are tested against;
//   3. its lowercase name in WeightTypeName (lib/native.ts), which the kernel bindings of the test
//      addon accept, so the kernel tests (test/kernels-matmul.test.ts) run it on every variant, and its
//      ggml name in KERNEL_WEIGHT_TYPES (lib/model/arch/table.ts), the types model files may hold.
// The loader (native/model/load.cc) then accepts the type for any `weight` tensor, and the model loops
// reach its kernels through matmul() (native/model/weights.h) without a change.
//
// Included by the ISA-specific translation units: everything here has internal linkage (see
// kernels.h on why nothing may be shared between them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// ggml type ids (ggml.h's enum ggml_type) of the weight types the kernels read, and DT_Q8_K, which
// only activations take (the partner of the 256-element types).
enum DType : int32_t {
  DT_F32 = 0,
  DT_F16 = 1,
  DT_Q4_0 = 2,
  DT_Q5_0 = 6,
  DT_Q8_0 = 8,
  DT_Q4_K = 12,
  DT_Q6_K = 14,
  DT_Q8_K = 15,
  DT_BF16 = 30,
};

struct WeightType {
  DType id;
  const char* name;      // ggml's name ("F16"); lowercase in the kernel bindings ("f16")
  uint32_t block;        // elements per block; a row's length must be a multiple of it
  uint32_t block_bytes;  // bytes per block
  uint32_t align;        // bytes a tensor's data must be aligned to (its widest scalar load)
  DType activation;      // what activations are converted to for the dot products with this type
};

// The quantized types are llama.cpp's block layouts (native/quant/quantize.h); their blocks are read
// with unaligned vector loads and 16-bit scale loads, so 2-byte alignment is all they need.
static constexpr WeightType kWeightTypes[] = {
    {DT_F32, "F32", 1, 4, 4, DT_F32},
    {DT_F16, "F16", 1, 2, 2, DT_F32},
    {DT_BF16, "BF16", 1, 2, 2, DT_F32},
    {DT_Q8_0, "Q8_0", 32, 34, 2, DT_Q8_0},
    {DT_Q4_0, "Q4_0", 32, 18, 2, DT_Q8_0},
    {DT_Q5_0, "Q5_0", 32, 22, 2, DT_Q8_0},
    {DT_Q4_K, "Q4_K", 256, 144, 2, DT_Q8_K},
    {DT_Q6_K, "Q6_K", 256, 210, 2, DT_Q8_K},
};

constexpr size_t kWeightTypeCount = sizeof(kWeightTypes) / sizeof(kWeightTypes[0]);

// The position of ggml type `id` in kWeightTypes (and in each variant's kernel rows);
// kWeightTypeCount when no kernel reads that type.
static constexpr size_t weight_type_index(int64_t id) {
  size_t i = 0;
  while (i < kWeightTypeCount && kWeightTypes[i].id != id) i++;
  return i;
}

// The row of ggml type `id`, or nullptr when no kernel reads that type.
static constexpr const WeightType* find_weight_type(int64_t id) {
  const size_t i = weight_type_index(id);
  return i < kWeightTypeCount ? &kWeightTypes[i] : nullptr;
}

// The row of a weight type the table has (every DType but the activation-only DT_Q8_K).
static constexpr const WeightType& weight_type(DType id) { return kWeightTypes[weight_type_index(id)]; }

// Bytes of `n` elements of type `t`; n must be a multiple of t.block.
static constexpr size_t row_bytes(const WeightType& t, size_t n) { return n / t.block * t.block_bytes; }

}  // namespace pg
