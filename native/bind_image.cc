// Image bindings: resizeRgb (PIL-compatible bicubic on 8-bit pixels), run off the JS thread.
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "async.h"
#include "bind.h"
#include "errors.h"
#include "image/resize.h"

namespace pg {
namespace {

// Largest accepted width or height (input or output) and largest buffer (input, output or the
// intermediate after the horizontal pass). Keeps every index in int range and every allocation sane.
constexpr size_t kMaxSide = 1 << 20;
constexpr size_t kMaxBytes = size_t{1} << 31;

size_t SideArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const size_t v = SizeArg(info, index, what);
  if (v < 1 || v > kMaxSide)
    throw Napi::RangeError::New(info.Env(), std::string("resizeRgb: ") + what + " must be in 1.." +
                                                std::to_string(kMaxSide) + ", got " + std::to_string(v));
  return v;
}

// resizeRgb(src: Uint8Array, width, height, channels, outWidth, outHeight): Promise<Uint8Array>
// src is HWC with `channels` (1..4) bytes per pixel; the result is [outHeight, outWidth, channels].
Napi::Value ResizeRgbJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const size_t width = SideArg(info, 1, "width");
  const size_t height = SideArg(info, 2, "height");
  const size_t channels = SizeArg(info, 3, "channels");
  if (channels < 1 || channels > 4)
    throw Napi::RangeError::New(env, "resizeRgb: channels must be 1..4, got " + std::to_string(channels));
  const size_t out_width = SideArg(info, 4, "outWidth");
  const size_t out_height = SideArg(info, 5, "outHeight");

  const size_t src_bytes = width * height * channels;
  const size_t out_bytes = out_width * out_height * channels;
  const size_t tmp_bytes = out_width * height * channels;  // upper bound of the intermediate image
  if (src_bytes > kMaxBytes || out_bytes > kMaxBytes || tmp_bytes > kMaxBytes)
    throw Napi::RangeError::New(env, "resizeRgb: " + std::to_string(width) + "x" + std::to_string(height) + " -> " +
                                         std::to_string(out_width) + "x" + std::to_string(out_height) +
                                         " needs buffers larger than 2 GiB");

  const uint8_t* src = TypedArrayArg<uint8_t>(info, 0, "resizeRgb: src", src_bytes);
  const size_t src_len = info[0].As<Napi::TypedArray>().ElementLength();
  if (src_len != src_bytes)
    throw Napi::RangeError::New(env, "resizeRgb: src has " + std::to_string(src_len) +
                                         " bytes, expected width*height*channels = " + std::to_string(src_bytes));

  // A private copy: the caller may reuse, detach or free its array while the work runs.
  std::shared_ptr<std::vector<uint8_t>> copy;
  try {
    copy = std::make_shared<std::vector<uint8_t>>(src, src + src_bytes);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("resizeRgb's copy of the source image", src_bytes);
  }
  // The result is allocated here (V8-owned; external buffers are not allowed under Electron's
  // memory cage) and filled by the worker; no JS code can see it before the Promise resolves.
  auto out = Napi::Uint8Array::New(env, out_bytes);
  uint8_t* dst = out.Data();
  const int w = static_cast<int>(width), h = static_cast<int>(height), c = static_cast<int>(channels);
  const int ow = static_cast<int>(out_width), oh = static_cast<int>(out_height);
  AsyncJob job;
  job.work = [=] {
    try {
      ResizeBicubicU8(copy->data(), w, h, c, dst, ow, oh);
    } catch (const std::bad_alloc&) {
      throw OutOfMemory("resizeRgb's intermediate image", tmp_bytes);
    }
    std::vector<uint8_t>().swap(*copy);  // release the copy early
  };
  job.complete = [](Napi::Env, const Kept& kept) { return kept[0]; };
  job.keep_alive = {out};
  job.name = "resizeRgb";
  return RunAsync(env, std::move(job));
}

}  // namespace

void RegisterImage(Napi::Env env, Napi::Object exports) {
  exports.Set("resizeRgb", Napi::Function::New(env, Guarded<ResizeRgbJs>, "resizeRgb"));
}

}  // namespace pg
