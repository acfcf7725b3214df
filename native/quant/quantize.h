// llama.cpp's block formats: byte layouts, reference quantizers and dequantizers.
//
// The quantizers give the same bytes as llama.cpp's quantize_row_*_ref (no importance matrix), the
// dequantizers the same floats as its dequantize_row_*: the same float operations in the same order.
// This file is portable C++ compiled without ISA flags; quantize.cc turns floating-point contraction
// off so no compiler fuses a multiply and an add into an FMA (that would change the rounding).
//
// A row of k elements is k / block_elements consecutive blocks. All structs are byte-exact copies of
// ggml's (little-endian, no padding); F16 fields are raw IEEE half bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {
namespace quant {

constexpr int QK = 32;     // elements per block of Q8_0 / Q4_0 / Q5_0
constexpr int QK_K = 256;  // elements per super-block of the k-quants

// ggml type ids, as stored in GGUF tensor tables.
enum QuantType : int32_t { QT_Q4_0 = 2, QT_Q5_0 = 6, QT_Q8_0 = 8, QT_Q4_K = 12, QT_Q6_K = 14, QT_Q8_K = 15 };

// d · q, q in [-128, 127] (llama.cpp's quantizer writes [-127, 127]).
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[QK];
};
// d · (q - 8), q a nibble: element j in the low nibble of qs[j], element j + 16 in the high one.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[QK / 2];
};
// d · (q - 16), q of 5 bits: the nibbles as in Q4_0, bit 4 of element j in bit j of qh (little-endian).
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
// Eight sub-blocks of 32: d · sc_j · q - dmin · m_j with 6-bit sc_j / m_j packed in `scales` (see
// q4_K_scale_min); qs holds four groups of 64 elements, sub-block 2g in the low nibbles of bytes
// 32g..32g+31 and sub-block 2g+1 in their high nibbles.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[QK_K / 2];
};
// Sixteen sub-blocks of 16: d · scales_j · (q - 32), q of 6 bits: low nibbles in ql, high 2-bit pairs
// in qh (layout in dequantize_row_q6_K).
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
// Activations for the k-quant dots: F32 d · q, q in [-127, 127], and the sum of each 16 q.
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};

static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block layout");
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block layout");
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block layout");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block layout");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block layout");
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block layout");

// IEEE half <-> float: exact widening; narrowing rounds to nearest even, overflows to ±inf.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K block. (The header's functions are static:
// ISA-specific kernel units include them, and a shared inline copy could end up compiled for AVX-512;
// see native/kernels/kernels.h.)
static inline void q4_K_scale_min(int j, const uint8_t* scales, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *m = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

// One type's facts and row functions (k a multiple of block_elements).
struct TypeTraits {
  QuantType type;
  const char* name;
  int block_elements;
  int block_bytes;
  void (*quantize_row)(const float* x, void* y, size_t k);
  void (*dequantize_row)(const void* x, float* y, size_t k);
};

// The traits of a ggml type id, or nullptr when it is not one of the types above.
const TypeTraits* type_traits(int32_t ggml_type);

// Bytes of a row of k elements (k a multiple of the block size).
static inline size_t row_bytes(const TypeTraits& t, size_t k) { return k / t.block_elements * t.block_bytes; }

void quantize_row_q8_0(const float* x, void* y, size_t k);
void quantize_row_q4_0(const float* x, void* y, size_t k);
void quantize_row_q5_0(const float* x, void* y, size_t k);
void quantize_row_q4_K(const float* x, void* y, size_t k);
void quantize_row_q6_K(const float* x, void* y, size_t k);
void quantize_row_q8_K(const float* x, void* y, size_t k);

void dequantize_row_q8_0(const void* x, float* y, size_t k);
void dequantize_row_q4_0(const void* x, float* y, size_t k);
void dequantize_row_q5_0(const void* x, float* y, size_t k);
void dequantize_row_q4_K(const void* x, float* y, size_t k);
void dequantize_row_q6_K(const void* x, float* y, size_t k);
void dequantize_row_q8_K(const void* x, float* y, size_t k);

// Source element types of quantize_rows (ggml ids).
enum SourceType : int32_t { SRC_F32 = 0, SRC_F16 = 1, SRC_BF16 = 30 };

// Why quantize_rows stopped at a row.
struct RowProblem {
  bool found = false;
  size_t row = 0;      // index within the call's rows
  size_t element = 0;  // index within the row (the first non-finite value, or the block's first)
  const char* what = "";  // "NaN", "infinity", "a block scale beyond the F16 range"
};

// Widens n_rows rows of k `src_type` elements to F32 and quantizes each to `t`, rows packed in dst
// (row_bytes(t, k) each). `scratch` holds k floats. Stops at the first row that holds NaN or ±inf,
// or whose quantized block scales overflow F16 (values too large for the type), and reports it;
// rows before it are written.
RowProblem quantize_rows(const TypeTraits& t, const void* src, SourceType src_type, size_t n_rows, size_t k,
                         void* dst, float* scratch);

}  // namespace quant
}  // namespace pg
