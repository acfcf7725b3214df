// Image resampling for preprocessing (PIL-compatible), independent of the SIMD kernel table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// Resizes an interleaved 8-bit image (HWC, `channels` 1..4) exactly as Pillow's
// `Image.resize(size, Image.BICUBIC)` does for 8-bit modes: antialiased bicubic (a = -0.5),
// separable, horizontal pass first, fixed-point coefficients with 22 fractional bits, rounding
// and clipping to 0..255 after each pass. A dimension whose size is unchanged is not filtered;
// an unchanged image is copied.
//
// src: [height, width, channels]   dst: [out_height, out_width, channels]
// All sizes must be >= 1 (the binding validates them). Throws std::bad_alloc when the
// intermediate buffers cannot be allocated.
void ResizeBicubicU8(const uint8_t* src, int width, int height, int channels, uint8_t* dst, int out_width,
                     int out_height);

}  // namespace pg
