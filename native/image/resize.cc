// PIL-compatible antialiased bicubic resampling of 8-bit images.
//
// The arithmetic follows Pillow's ImagingResample for 8-bit modes (facts from its public source):
// per axis, output sample i is centred on source coordinate (i + 0.5) * scale; when downscaling
// the filter is stretched by scale (antialiasing), so the window covers ±2·scale source samples;
// weights are normalised to sum 1, then converted to fixed point with 22 fractional bits, rounded
// half away from zero. Each pass accumulates in int32 starting from one half, shifts right by 22
// and clamps to 0..255. Horizontal pass first (only over the source rows the vertical pass reads),
// then vertical. Reproducing that order and rounding gives bit-identical results.
#include "resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

// Coefficients must be computed exactly as written (no fused multiply-add), or a weight can land
// on the other side of a fixed-point rounding boundary.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace pg {
namespace {

// Fraction bits of the fixed-point weights: 8 result bits plus 2 bits of headroom (negative lobes,
// partial sums above 1) in a signed 32-bit accumulator.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);

// Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC), support 2.
double Bicubic(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// The filter windows of one axis: output sample i reads `count[i]` source samples starting at
// `first[i]`, weighted by weights[i * taps .. i * taps + count[i]).
struct AxisFilter {
  int taps = 0;                  // window capacity (the widest possible window)
  std::vector<int> first;        // [out_size]
  std::vector<int> count;        // [out_size]
  std::vector<int32_t> weights;  // [out_size, taps], fixed point with kPrecisionBits fraction bits
};

AxisFilter MakeAxisFilter(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = scale < 1.0 ? 1.0 : scale;  // stretch the kernel only when shrinking
  const double support = 2.0 * filter_scale;
  const double inv_filter_scale = 1.0 / filter_scale;

  AxisFilter f;
  f.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  f.first.resize(out_size);
  f.count.resize(out_size);
  f.weights.assign(static_cast<size_t>(out_size) * f.taps, 0);
  std::vector<double> w(f.taps);
  for (int i = 0; i < out_size; i++) {
    const double center = (i + 0.5) * scale;
    // Window bounds rounded to the nearest sample (truncation after +0.5, as Pillow does).
    int lo = static_cast<int>(center - support + 0.5);
    int hi = static_cast<int>(center + support + 0.5);
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    const int n = hi - lo;
    double sum = 0.0;
    for (int t = 0; t < n; t++) {
      w[t] = Bicubic((static_cast<double>(t + lo) - center + 0.5) * inv_filter_scale);
      sum += w[t];
    }
    int32_t* k = &f.weights[static_cast<size_t>(i) * f.taps];
    for (int t = 0; t < n; t++) {
      const double normalised = sum != 0.0 ? w[t] / sum : w[t];
      const double fixed = normalised * (1 << kPrecisionBits);
      k[t] = static_cast<int32_t>(fixed < 0 ? fixed - 0.5 : fixed + 0.5);  // round half away from zero
    }
    f.first[i] = lo;
    f.count[i] = n;
  }
  return f;
}

// Rounds a fixed-point accumulator (which started at one half) to 0..255.
inline uint8_t ClipToByte(int32_t acc) {
  const int32_t v = acc >> kPrecisionBits;  // arithmetic shift: floor for negative sums
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Filters `rows` rows of src (starting at row `row0`) along x into dst.
// src: [*, in_width, C]   dst: [rows, out_width, C]
// Accumulator bound: normalised bicubic weights have sum |w| < 1.3, so |acc| < 2^21 + 255 · 1.3 · 2^22
// < 2^31 — no int32 overflow.
template <int C>
void HorizontalPass(const uint8_t* src, int in_width, int row0, int rows, const AxisFilter& f, int out_width,
                    uint8_t* dst) {
  for (int y = 0; y < rows; y++) {
    const uint8_t* in = src + static_cast<size_t>(row0 + y) * in_width * C;
    uint8_t* out = dst + static_cast<size_t>(y) * out_width * C;
    for (int x = 0; x < out_width; x++) {
      const uint8_t* p = in + static_cast<size_t>(f.first[x]) * C;
      const int32_t* k = &f.weights[static_cast<size_t>(x) * f.taps];
      int32_t acc[C];
      for (int c = 0; c < C; c++) acc[c] = kHalf;
      for (int t = 0; t < f.count[x]; t++) {
        for (int c = 0; c < C; c++) acc[c] += static_cast<int32_t>(p[t * C + c]) * k[t];
      }
      for (int c = 0; c < C; c++) out[x * C + c] = ClipToByte(acc[c]);
    }
  }
}

// Filters along y. src rows are `row_len` bytes; src row r holds source row r + row0.
// dst: [out_height, row_len]. One accumulator row, updated a source row at a time (contiguous,
// so the compiler vectorises it); integer sums make the order irrelevant to the result.
void VerticalPass(const uint8_t* src, size_t row_len, int row0, const AxisFilter& f, int out_height,
                  uint8_t* dst) {
  std::vector<int32_t> acc(row_len);
  for (int y = 0; y < out_height; y++) {
    std::fill(acc.begin(), acc.end(), kHalf);
    const int32_t* k = &f.weights[static_cast<size_t>(y) * f.taps];
    for (int t = 0; t < f.count[y]; t++) {
      const uint8_t* row = src + static_cast<size_t>(f.first[y] - row0 + t) * row_len;
      const int32_t w = k[t];
      for (size_t i = 0; i < row_len; i++) acc[i] += static_cast<int32_t>(row[i]) * w;
    }
    uint8_t* out = dst + static_cast<size_t>(y) * row_len;
    for (size_t i = 0; i < row_len; i++) out[i] = ClipToByte(acc[i]);
  }
}

void HorizontalPassAnyChannels(int channels, const uint8_t* src, int in_width, int row0, int rows,
                               const AxisFilter& f, int out_width, uint8_t* dst) {
  switch (channels) {
    case 1: return HorizontalPass<1>(src, in_width, row0, rows, f, out_width, dst);
    case 2: return HorizontalPass<2>(src, in_width, row0, rows, f, out_width, dst);
    case 3: return HorizontalPass<3>(src, in_width, row0, rows, f, out_width, dst);
    default: return HorizontalPass<4>(src, in_width, row0, rows, f, out_width, dst);
  }
}

}  // namespace

void ResizeBicubicU8(const uint8_t* src, int width, int height, int channels, uint8_t* dst, int out_width,
                     int out_height) {
  const bool horizontal = out_width != width;
  const bool vertical = out_height != height;
  const size_t out_row = static_cast<size_t>(out_width) * channels;
  if (!horizontal && !vertical) {
    std::memcpy(dst, src, static_cast<size_t>(height) * out_row);
    return;
  }
  if (!vertical) {
    HorizontalPassAnyChannels(channels, src, width, 0, height, MakeAxisFilter(width, out_width), out_width, dst);
    return;
  }
  const AxisFilter rows = MakeAxisFilter(height, out_height);
  if (!horizontal) {
    VerticalPass(src, out_row, 0, rows, out_height, dst);
    return;
  }
  // Only the source rows some output row reads need the horizontal pass.
  const int row0 = rows.first[0];
  const int row_end = rows.first[out_height - 1] + rows.count[out_height - 1];
  std::vector<uint8_t> tmp(static_cast<size_t>(row_end - row0) * out_row);  // [row_end - row0, out_width, channels]
  HorizontalPassAnyChannels(channels, src, width, row0, row_end - row0, MakeAxisFilter(width, out_width), out_width,
                            tmp.data());
  VerticalPass(tmp.data(), out_row, row0, rows, out_height, dst);
}

}  // namespace pg
