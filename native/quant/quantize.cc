// Reference quantizers and dequantizers; see quantize.h. Every float expression below is evaluated
// in the order llama.cpp's ggml-quants.c evaluates it (a*b*c is (a*b)*c, ints widen to float where C
// would), because a different order or a fused multiply-add changes the rounding and so the bytes.
#include "quantize.h"

#include <cmath>
#include <cstring>

// No a*b+c -> fma, whatever the build flags (GCC contracts by default even in ISO C++ mode on
// targets with FMA, such as AArch64).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace pg {
namespace quant {

namespace {

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Rounds to the nearest integer, ties to even, for |f| <= 2^22 (ggml's nearest_int: adding 1.5·2^23
// leaves the rounded integer in the low mantissa bits).
inline int nearest_int(float f) {
  const float shifted = f + 12582912.f;
  return static_cast<int>(float_bits(shifted) & 0x007fffff) - 0x00400000;
}

template <typename T>
inline T min_of(T a, T b) { return a < b ? a : b; }
template <typename T>
inline T max_of(T a, T b) { return a > b ? a : b; }

// Groups whose largest magnitude is below this quantize to zero (ggml's GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// The symmetric quantizer of the Q6_K sub-blocks (ggml's make_qx_quants with rmse_type 1 and no
// importance weights): levels L in [0, 2·nmax), value ≈ scale · (L - nmax), the scale chosen among 19
// candidates to minimise the error weighted by x².
float make_qx_quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = max_of(-nmax, min_of(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = max_of(-nmax, min_of(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + max_of(-nmax, min_of(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The asymmetric quantizer of the Q4_K sub-blocks (ggml's make_qkx2_quants, squared error): levels
// L in [0, nmax], value ≈ scale · L - the_min, searched over nstep + 1 candidate scales with a
// weighted least-squares fit of scale and min for each.
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* the_min,
                       uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(max_of(0, min_of(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = max_of(0, min_of(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// The largest |x| of a block and the signed value that has it (the first one, on ties).
inline void signed_absmax(const float* x, int n, float* amax, float* max) {
  *amax = 0;
  *max = 0;
  for (int j = 0; j < n; j++) {
    if (*amax < std::fabs(x[j])) {
      *amax = std::fabs(x[j]);
      *max = x[j];
    }
  }
}

}  // namespace

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {  // zero or subnormal: mant · 2^-24, exact in float
    const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t b = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000);
  const uint32_t abs = b & 0x7fffffff;
  if (abs > 0x7f800000) return sign | 0x7e00;   // NaN (quiet)
  if (abs >= 0x47800000) return sign | 0x7c00;  // >= 2^16: infinity even before rounding
  if (abs >= 0x38800000) {                       // a normal half (>= 2^-14)
    uint32_t half = ((abs >> 23) - 112) << 10 | ((abs & 0x7fffff) >> 13);
    const uint32_t rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;  // a carry into the exponent is right, up to inf
    return sign | static_cast<uint16_t>(half);
  }
  if (abs <= 0x33000000) return sign;  // <= 2^-25 rounds to zero (2^-25 itself is a tie, 0 is even)
  // Subnormal half: the value in units of 2^-24 is significand · 2^(exp - 126), rounded to even.
  const uint32_t significand = (abs & 0x7fffff) | 0x800000;
  const int shift = 126 - static_cast<int>(abs >> 23);
  uint32_t half = significand >> shift;
  const uint32_t rest = significand & ((1u << shift) - 1), tie = 1u << (shift - 1);
  if (rest > tie || (rest == tie && (half & 1))) half++;
  return sign | static_cast<uint16_t>(half);
}

// ---------------------------------------------------------------------------------------------
// Blocks of 32
// ---------------------------------------------------------------------------------------------

void quantize_row_q8_0(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ8_0*>(out);
  for (size_t i = 0; i < k / QK; i++, x += QK) {
    float amax = 0;
    for (int j = 0; j < QK; j++) amax = max_of(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < QK; j++) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void quantize_row_q4_0(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ4_0*>(out);
  for (size_t i = 0; i < k / QK; i++, x += QK) {
    float amax, max;
    signed_absmax(x, QK, &amax, &max);
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = min_of<uint8_t>(15, static_cast<int8_t>(x[j] * id + 8.5f));
      const uint8_t q1 = min_of<uint8_t>(15, static_cast<int8_t>(x[QK / 2 + j] * id + 8.5f));
      y[i].qs[j] = static_cast<uint8_t>(q0 | q1 << 4);
    }
  }
}

void quantize_row_q5_0(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ5_0*>(out);
  for (size_t i = 0; i < k / QK; i++, x += QK) {
    float amax, max;
    signed_absmax(x, QK, &amax, &max);
    const float d = max / -16;
    const float id = d ? 1.0f / d : 0.0f;
    y[i].d = f32_to_f16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
      const uint8_t q0 = min_of<uint8_t>(31, static_cast<int8_t>(x[j] * id + 16.5f));
      const uint8_t q1 = min_of<uint8_t>(31, static_cast<int8_t>(x[QK / 2 + j] * id + 16.5f));
      y[i].qs[j] = static_cast<uint8_t>((q0 & 0x0F) | (q1 & 0x0F) << 4);
      qh |= static_cast<uint32_t>(q0 >> 4) << j;
      qh |= static_cast<uint32_t>(q1 >> 4) << (j + QK / 2);
    }
    std::memcpy(y[i].qh, &qh, 4);
  }
}

void dequantize_row_q8_0(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ8_0*>(in);
  for (size_t i = 0; i < k / QK; i++, y += QK) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK; j++) y[j] = x[i].qs[j] * d;
  }
}

void dequantize_row_q4_0(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ4_0*>(in);
  for (size_t i = 0; i < k / QK; i++, y += QK) {
    const float d = f16_to_f32(x[i].d);
    for (int j = 0; j < QK / 2; j++) {
      y[j] = ((x[i].qs[j] & 0x0F) - 8) * d;
      y[j + QK / 2] = ((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q5_0(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ5_0*>(in);
  for (size_t i = 0; i < k / QK; i++, y += QK) {
    const float d = f16_to_f32(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, 4);
    for (int j = 0; j < QK / 2; j++) {
      const int high0 = ((qh >> j) << 4) & 0x10, high1 = (qh >> (j + 12)) & 0x10;
      y[j] = (((x[i].qs[j] & 0x0F) | high0) - 16) * d;
      y[j + QK / 2] = (((x[i].qs[j] >> 4) | high1) - 16) * d;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Super-blocks of 256
// ---------------------------------------------------------------------------------------------

void quantize_row_q4_K(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ4_K*>(out);
  uint8_t L[QK_K], Laux[32];
  float weights[32], mins[QK_K / 32], scales[QK_K / 32];
  for (size_t i = 0; i < k / QK_K; i++, x += QK_K) {
    float max_scale = 0, max_min = 0;  // both >= 0: the min is subtracted
    for (int j = 0; j < QK_K / 32; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
      scales[j] = make_qkx2_quants(32, 15, xs, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    // 6-bit sub-block scales and mins relative to the super-block's d and dmin.
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
      const uint8_t ls = min_of<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
      const uint8_t lm = min_of<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
      if (j < 4) {
        y[i].scales[j] = ls;
        y[i].scales[j + 4] = lm;
      } else {  // low 4 bits in bytes 8..11, high 2 bits in the top of bytes 0..7
        y[i].scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | (lm & 0xF) << 4);
        y[i].scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        y[i].scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    y[i].d = f32_to_f16(max_scale / 63.f);
    y[i].dmin = f32_to_f16(max_min / 63.f);
    // Requantize against the scales as stored.
    for (int j = 0; j < QK_K / 32; ++j) {
      uint8_t sc, m;
      q4_K_scale_min(j, y[i].scales, &sc, &m);
      const float d = f16_to_f32(y[i].d) * sc;
      if (!d) continue;
      const float dm = f16_to_f32(y[i].dmin) * m;
      for (int ii = 0; ii < 32; ++ii) {
        const int l = nearest_int((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(max_of(0, min_of(15, l)));
      }
    }
    for (int j = 0; j < QK_K; j += 64)
      for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = static_cast<uint8_t>(L[j + l] | L[j + l + 32] << 4);
  }
}

void dequantize_row_q4_K(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ4_K*>(in);
  for (size_t i = 0; i < k / QK_K; i++) {
    const float d = f16_to_f32(x[i].d), min = f16_to_f32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (int j = 0; j < QK_K / 32; j += 2, q += 32) {
      uint8_t sc, m;
      q4_K_scale_min(j, x[i].scales, &sc, &m);
      const float d1 = d * sc, m1 = min * m;
      q4_K_scale_min(j + 1, x[i].scales, &sc, &m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

void quantize_row_q6_K(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ6_K*>(out);
  int8_t L[QK_K];
  float scales[QK_K / 16];
  for (size_t i = 0; i < k / QK_K; i++, x += QK_K) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < QK_K / 16; ++ib) {
      scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      const float abs_scale = std::fabs(scales[ib]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[ib];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    // 8-bit sub-block scales relative to d; the largest maps to -128.
    const float iscale = -128.f / max_scale;
    y[i].d = f32_to_f16(1 / iscale);
    for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = static_cast<int8_t>(min_of(127, nearest_int(iscale * scales[ib])));
    for (int j = 0; j < QK_K / 16; ++j) {
      const float d = f16_to_f32(y[i].d) * y[i].scales[j];
      if (!d) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<int8_t>(max_of(-32, min_of(31, l)) + 32);
      }
    }
    uint8_t* ql = y[i].ql;
    uint8_t* qh = y[i].qh;
    for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0xF) | (q3 & 0xF) << 4);
        ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | (q4 & 0xF) << 4);
        qh[l] = static_cast<uint8_t>(q1 >> 4 | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
      }
    }
  }
}

void dequantize_row_q6_K(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ6_K*>(in);
  for (size_t i = 0; i < k / QK_K; i++) {
    const float d = f16_to_f32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

void quantize_row_q8_K(const float* x, void* out, size_t k) {
  auto* y = static_cast<BlockQ8_K*>(out);
  for (size_t i = 0; i < k / QK_K; i++, x += QK_K) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (!amax) {
      std::memset(&y[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < QK_K; ++j) y[i].qs[j] = static_cast<int8_t>(min_of(127, nearest_int(iscale * x[j])));
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void dequantize_row_q8_K(const void* in, float* y, size_t k) {
  const auto* x = static_cast<const BlockQ8_K*>(in);
  for (size_t i = 0; i < k / QK_K; i++, y += QK_K)
    for (int j = 0; j < QK_K; ++j) y[j] = x[i].d * x[i].qs[j];
}

// ---------------------------------------------------------------------------------------------
// Type table and the row driver
// ---------------------------------------------------------------------------------------------

const TypeTraits* type_traits(int32_t ggml_type) {
  static const TypeTraits table[] = {
      {QT_Q8_0, "Q8_0", QK, sizeof(BlockQ8_0), quantize_row_q8_0, dequantize_row_q8_0},
      {QT_Q4_0, "Q4_0", QK, sizeof(BlockQ4_0), quantize_row_q4_0, dequantize_row_q4_0},
      {QT_Q5_0, "Q5_0", QK, sizeof(BlockQ5_0), quantize_row_q5_0, dequantize_row_q5_0},
      {QT_Q4_K, "Q4_K", QK_K, sizeof(BlockQ4_K), quantize_row_q4_K, dequantize_row_q4_K},
      {QT_Q6_K, "Q6_K", QK_K, sizeof(BlockQ6_K), quantize_row_q6_K, dequantize_row_q6_K},
      {QT_Q8_K, "Q8_K", QK_K, sizeof(BlockQ8_K), quantize_row_q8_K, dequantize_row_q8_K},
  };
  for (const auto& t : table)
    if (t.type == ggml_type) return &t;
  return nullptr;
}

namespace {

void widen_row(const void* src, SourceType type, size_t row, size_t k, float* out) {
  if (type == SRC_F32) {
    std::memcpy(out, static_cast<const float*>(src) + row * k, k * sizeof(float));
    return;
  }
  const uint16_t* h = static_cast<const uint16_t*>(src) + row * k;
  if (type == SRC_F16) {
    for (size_t i = 0; i < k; i++) out[i] = f16_to_f32(h[i]);
  } else {
    for (size_t i = 0; i < k; i++) out[i] = bits_float(static_cast<uint32_t>(h[i]) << 16);
  }
}

// Offsets of the F16 scale fields in a block of `t` (none for Q8_K, whose d is F32).
int f16_fields(QuantType t, size_t offsets[2]) {
  switch (t) {
    case QT_Q8_0:
    case QT_Q4_0:
    case QT_Q5_0: offsets[0] = 0; return 1;
    case QT_Q4_K: offsets[0] = offsetof(BlockQ4_K, d); offsets[1] = offsetof(BlockQ4_K, dmin); return 2;
    case QT_Q6_K: offsets[0] = offsetof(BlockQ6_K, d); return 1;
    default: return 0;
  }
}

}  // namespace

RowProblem quantize_rows(const TypeTraits& t, const void* src, SourceType src_type, size_t n_rows, size_t k,
                         void* dst, float* scratch) {
  RowProblem problem;
  const size_t out_bytes = row_bytes(t, k);
  size_t fields[2];
  const int n_fields = f16_fields(t.type, fields);
  for (size_t r = 0; r < n_rows; r++) {
    widen_row(src, src_type, r, k, scratch);
    for (size_t i = 0; i < k; i++) {
      if (!std::isfinite(scratch[i])) {
        problem = {true, r, i, std::isnan(scratch[i]) ? "NaN" : "infinity"};
        return problem;
      }
    }
    uint8_t* out = static_cast<uint8_t*>(dst) + r * out_bytes;
    t.quantize_row(scratch, out, k);
    for (size_t b = 0; b < k / t.block_elements; b++) {
      for (int f = 0; f < n_fields; f++) {
        uint16_t h;
        std::memcpy(&h, out + b * t.block_bytes + fields[f], 2);
        if ((h & 0x7c00) == 0x7c00) {
          problem = {true, r, b * t.block_elements, "a block scale beyond the F16 range (values too large for this type)"};
          return problem;
        }
      }
    }
  }
  return problem;
}

}  // namespace quant
}  // namespace pg
