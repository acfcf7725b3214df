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
// Partial vectors (row tails): load_n(p, n, fill) reads lanes [0, n) and sets the others to `fill`
// without touching memory past p + n; store_n(p, v, n) writes lanes [0, n) only (0 < n <= W).
// exp is vectorised with a polynomial (see exp() below); the scalar variant calls expf instead and
// serves as the C++ reference.
//
// Everything here is `static inline` inside the including namespace, so no two ISAs share a symbol.
#include <math.h>    // expf, sqrtf, sin, cos, pow: C functions, so no inline code is shared across ISAs
#include <stdint.h>
#include <string.h>

#include <cstdint>
#include <cstring>

#if defined(PG_ISA_AVX2) || defined(PG_ISA_AVX512)
#include <immintrin.h>
#elif defined(PG_ISA_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>  // _mm_prefetch (x86), __prefetch (ARM64)
#endif

namespace vec {

// Read prefetch of the cache line holding p into cache level kLevel and the ones beyond it: 1 for
// data wanted soon, 2 for data wanted after other work. A hint: any address is allowed. One place
// for the compiler's spelling (MSVC has no __builtin_prefetch).
template <int kLevel>
static inline void prefetch(const void* p) {
  static_assert(kLevel == 1 || kLevel == 2, "prefetch into L1 or L2");
#if defined(_MSC_VER) && !defined(__clang__)
#if defined(_M_X64) || defined(_M_IX86)
  _mm_prefetch(static_cast<const char*>(p), kLevel == 1 ? _MM_HINT_T0 : _MM_HINT_T1);
#elif defined(_M_ARM64)
  __prefetch(p);
#endif
#else
  __builtin_prefetch(p, 0, kLevel == 1 ? 3 : 2);
#endif
}

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
static inline V div(V a, V b) { return _mm512_div_ps(a, b); }
static inline V min(V a, V b) { return _mm512_min_ps(a, b); }  // returns b when either is NaN
static inline V round(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for integer-valued n in [-126, 127].
static inline V pow2i(V n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
static inline V load_n(const float* p, int n, float fill = 0.0f) {
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << n) - 1), p);
}
static inline void store_n(float* p, V a, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), a); }
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
static inline V div(V a, V b) { return _mm256_div_ps(a, b); }
static inline V min(V a, V b) { return _mm256_min_ps(a, b); }  // returns b when either is NaN
static inline V round(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
// 2^n for integer-valued n in [-126, 127].
static inline V pow2i(V n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
// Lane mask with the first n lanes set: a window into eight ones followed by eight zeros.
static inline __m256i first_lanes(int n) {
  static const int32_t ones_then_zeros[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256((const __m256i*)(ones_then_zeros + 8 - n));
}
static inline V load_n(const float* p, int n, float fill = 0.0f) {
  const __m256i m = first_lanes(n);
  return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void store_n(float* p, V a, int n) { _mm256_maskstore_ps(p, first_lanes(n), a); }
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
static inline V div(V a, V b) { return vdivq_f32(a, b); }
static inline V min(V a, V b) { return vminq_f32(a, b); }
static inline V round(V a) { return vrndnq_f32(a); }
// 2^n for integer-valued n in [-126, 127].
static inline V pow2i(V n) {
  return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23));
}
static inline V load_n(const float* p, int n, float fill = 0.0f) {
  float buf[4] = {fill, fill, fill, fill};
  std::memcpy(buf, p, sizeof(float) * n);
  return vld1q_f32(buf);
}
static inline void store_n(float* p, V a, int n) {
  float buf[4];
  vst1q_f32(buf, a);
  std::memcpy(p, buf, sizeof(float) * n);
}
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
static inline V div(V a, V b) { return a / b; }
static inline V min(V a, V b) { return a < b ? a : b; }
static inline V load_n(const float* p, int, float = 0.0f) { return *p; }
static inline void store_n(float* p, V a, int) { *p = a; }
static inline V exp(V a) { return expf(a); }
#define PG_VEC_EXP_DEFINED
#endif

#ifndef PG_VEC_EXP_DEFINED
// e^x for every lane, within ~2 ulp of the float64 value (measured in test/kernels-ops.test.ts).
// Range reduction x = n·ln2 + r, |r| <= ln2/2, with ln2 split in two (Cody–Waite) so n·ln2 is
// subtracted without rounding error; e^r by its degree-7 Taylor polynomial (the first dropped term,
// r^8/8!, is below 6e-9 relative, far under float's 6e-8 ulp). 2^n is applied in two halves so
// that results below 2^-126 come out as correctly rounded subnormals or zero. Inputs are clamped to
// [-104, 89] first (beyond that the float result is 0 or inf anyway); max/min take x as their
// second operand so a NaN input stays NaN.
static inline V exp(V x) {
  x = min(set1(89.0f), max(set1(-104.0f), x));
  const V n = round(mul(x, set1(1.44269504088896341f)));
  V r = fmadd(n, set1(-0.693359375f), x);  // ln2 = 0.693359375 - 2.12194440e-4 (first part exact in 9 bits)
  r = fmadd(n, set1(2.12194440e-4f), r);
  V p = set1(1.0f / 5040.0f);
  p = fmadd(p, r, set1(1.0f / 720.0f));
  p = fmadd(p, r, set1(1.0f / 120.0f));
  p = fmadd(p, r, set1(1.0f / 24.0f));
  p = fmadd(p, r, set1(1.0f / 6.0f));
  p = fmadd(p, r, set1(0.5f));
  p = add(fmadd(p, mul(r, r), r), set1(1.0f));  // 1 + r + r²(1/2 + r/6 + ...)
  const V n1 = round(mul(n, set1(0.5f)));       // n in [-151, 129]: both halves stay normal
  return mul(mul(p, pow2i(n1)), pow2i(sub(n, n1)));
}
#endif

// 8-lane blocks for GEMM packing, whatever W is: load8* reads 8 consecutive elements as F32 and
// transpose8x8 stores an 8x8 block transposed: dst[j * ld + i] = lane j of r[i]. (x86 uses __m256
// for both AVX2 and AVX-512; other ISAs a plain array.)
#if defined(PG_ISA_AVX2) || defined(PG_ISA_AVX512)
typedef __m256 V8;
static inline V8 zero8() { return _mm256_setzero_ps(); }
static inline V8 load8(const float* p) { return _mm256_loadu_ps(p); }
static inline V8 load8_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
static inline V8 load8_bf16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
}
static inline void transpose8x8(const V8* r, float* dst, size_t ld) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {  // per 128-bit half: (a0 b0 a1 b1), (a2 b2 a3 b3)
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {  // (a0 b0 c0 d0), (a1 b1 c1 d1), (a2 ..), (a3 ..) per half
    s[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; j++) {  // join the halves of rows 0-3 and 4-7
    _mm256_storeu_ps(dst + j * ld, _mm256_permute2f128_ps(s[j], s[j + 4], 0x20));
    _mm256_storeu_ps(dst + (j + 4) * ld, _mm256_permute2f128_ps(s[j], s[j + 4], 0x31));
  }
}
#else
struct V8 {
  float v[8];
};
static inline V8 zero8() { return V8{}; }
static inline V8 load8(const float* p) {
  V8 r;
  for (int i = 0; i < 8; i++) r.v[i] = p[i];
  return r;
}
static inline V8 load8_f16(const uint16_t* p) {
  V8 r;
  for (int i = 0; i < 8; i++) r.v[i] = f16_to_f32(p[i]);
  return r;
}
static inline V8 load8_bf16(const uint16_t* p) {
  V8 r;
  for (int i = 0; i < 8; i++) r.v[i] = bf16_to_f32(p[i]);
  return r;
}
static inline void transpose8x8(const V8* r, float* dst, size_t ld) {
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) dst[j * ld + i] = r[i].v[j];
}
#endif

}  // namespace vec
