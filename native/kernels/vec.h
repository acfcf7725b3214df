// A thin vector abstraction so each kernel's algorithm is written once (in a header included by
// every ISA's translation unit) and only these few operations differ per ISA. Include this inside
// a translation unit compiled with the ISA's flags; it defines `Vec` in the current namespace's
// sub-namespace `vec`, selected by which PG_ISA_* macro the including file defined.
//
//   PG_ISA_SCALAR  1 lane, plain C++
//   PG_ISA_AVX2    8 lanes (__m256), FMA, F16C
//   PG_ISA_AVX512  16 lanes (__m512)
//   PG_ISA_NEON    4 lanes (float32x4_t)
//
// Everything here is `static inline` inside the including namespace, so no two ISAs share a symbol.
#include <cstdint>
#include <cstring>

#if defined(PG_ISA_AVX2) || defined(PG_ISA_AVX512)
#include <immintrin.h>
#elif defined(PG_ISA_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace vec {

// Scalar conversions every ISA needs for tails.
static inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);  // inf / nan
  } else if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; exp--; }
      bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
    }
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
static inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

#if defined(PG_ISA_AVX512)
constexpr int W = 16;
typedef __m512 V;
static inline V zero() { return _mm512_setzero_ps(); }
static inline V set1(float a) { return _mm512_set1_ps(a); }
static inline V load(const float* p) { return _mm512_loadu_ps(p); }
static inline void store(float* p, V a) { _mm512_storeu_ps(p, a); }
static inline V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }
static inline V load_bf16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
}
static inline V add(V a, V b) { return _mm512_add_ps(a, b); }
static inline V sub(V a, V b) { return _mm512_sub_ps(a, b); }
static inline V mul(V a, V b) { return _mm512_mul_ps(a, b); }
static inline V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }  // a*b + c
static inline V max(V a, V b) { return _mm512_max_ps(a, b); }
static inline float reduce_add(V a) { return _mm512_reduce_add_ps(a); }
static inline float reduce_max(V a) { return _mm512_reduce_max_ps(a); }
#elif defined(PG_ISA_AVX2)
constexpr int W = 8;
typedef __m256 V;
static inline V zero() { return _mm256_setzero_ps(); }
static inline V set1(float a) { return _mm256_set1_ps(a); }
static inline V load(const float* p) { return _mm256_loadu_ps(p); }
static inline void store(float* p, V a) { _mm256_storeu_ps(p, a); }
static inline V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
static inline V load_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
static inline V add(V a, V b) { return _mm256_add_ps(a, b); }
static inline V sub(V a, V b) { return _mm256_sub_ps(a, b); }
static inline V mul(V a, V b) { return _mm256_mul_ps(a, b); }
static inline V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static inline V max(V a, V b) { return _mm256_max_ps(a, b); }
static inline float reduce_add(V a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
static inline float reduce_max(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#elif defined(PG_ISA_NEON) && defined(__aarch64__)
constexpr int W = 4;
typedef float32x4_t V;
static inline V zero() { return vdupq_n_f32(0.0f); }
static inline V set1(float a) { return vdupq_n_f32(a); }
static inline V load(const float* p) { return vld1q_f32(p); }
static inline void store(float* p, V a) { vst1q_f32(p, a); }
static inline V load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline V load_bf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
static inline V add(V a, V b) { return vaddq_f32(a, b); }
static inline V sub(V a, V b) { return vsubq_f32(a, b); }
static inline V mul(V a, V b) { return vmulq_f32(a, b); }
static inline V fmadd(V a, V b, V c) { return vfmaq_f32(c, a, b); }
static inline V max(V a, V b) { return vmaxq_f32(a, b); }
static inline float reduce_add(V a) { return vaddvq_f32(a); }
static inline float reduce_max(V a) { return vmaxvq_f32(a); }
#else  // scalar (also the NEON fallback when compiled for another architecture)
constexpr int W = 1;
typedef float V;
static inline V zero() { return 0.0f; }
static inline V set1(float a) { return a; }
static inline V load(const float* p) { return *p; }
static inline void store(float* p, V a) { *p = a; }
static inline V load_f16(const uint16_t* p) { return f16_to_f32(*p); }
static inline V load_bf16(const uint16_t* p) { return bf16_to_f32(*p); }
static inline V add(V a, V b) { return a + b; }
static inline V sub(V a, V b) { return a - b; }
static inline V mul(V a, V b) { return a * b; }
static inline V fmadd(V a, V b, V c) { return a * b + c; }
static inline V max(V a, V b) { return a > b ? a : b; }
static inline float reduce_add(V a) { return a; }
static inline float reduce_max(V a) { return a; }
#endif

}  // namespace vec
