// JS bindings of the reference quantizers (native/quant): `paligemma quantize`, `convert --outtype
// q8_0` and the tests call them on chunks of rows.
//
//   quantizeRowsAsync(type, src, srcType, rows, k, dst) -> Promise<null | { row, element, what }>
//       type: ggml id of Q8_0/Q4_0/Q5_0/Q4_K/Q6_K/Q8_K; src: Uint8Array of rows·k elements of srcType
//       (0 F32, 1 F16, 30 BF16); dst: Uint8Array of rows · rowBytes(type, k). Runs off the JS thread.
//       Resolves null, or the first row that holds NaN/±inf or overflows the type's F16 scales (rows
//       before it are written).
//   dequantizeRows(type, src, rows, k) -> Float32Array [rows · k]
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "async.h"
#include "bind.h"
#include "quant/quantize.h"

namespace pg {
namespace {

const quant::TypeTraits& QuantTypeArg(const Napi::CallbackInfo& info, size_t index) {
  const size_t id = SizeArg(info, index, "type");
  const quant::TypeTraits* t = id <= 255 ? quant::type_traits(static_cast<int32_t>(id)) : nullptr;
  if (!t) throw Napi::RangeError::New(info.Env(), "type " + std::to_string(id) + " is not a quantized type (2, 6, 8, 12, 14, 15)");
  return *t;
}

// k: a positive multiple of the type's block size; rows · k bounded so sizes stay far from overflow.
void CheckShape(Napi::Env env, const quant::TypeTraits& t, size_t rows, size_t k) {
  if (k == 0 || k % t.block_elements != 0)
    throw Napi::RangeError::New(env, "k = " + std::to_string(k) + " is not a positive multiple of " + t.name +
                                         "'s block size " + std::to_string(t.block_elements));
  if (rows > (size_t(1) << 32) / k) throw Napi::RangeError::New(env, "rows · k is too large");
}

// A Uint8Array of exactly `bytes` bytes whose start is aligned to `align`.
uint8_t* BytesArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t bytes, size_t align) {
  uint8_t* p = TypedArrayArg<uint8_t>(info, index, what, 0);
  const size_t length = info[index].As<Napi::TypedArray>().ElementLength();
  if (length != bytes)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " has " + std::to_string(length) + " bytes, expected " +
                                                std::to_string(bytes));
  if (reinterpret_cast<uintptr_t>(p) % align != 0)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must start at a multiple of " + std::to_string(align) + " bytes");
  return p;
}

size_t BlockAlignment(const quant::TypeTraits& t) { return t.type == quant::QT_Q8_K ? 4 : 2; }

Napi::Value QuantizeRowsAsyncJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const quant::TypeTraits& t = QuantTypeArg(info, 0);
  const size_t src_id = SizeArg(info, 2, "srcType");
  if (src_id != quant::SRC_F32 && src_id != quant::SRC_F16 && src_id != quant::SRC_BF16)
    throw Napi::RangeError::New(env, "srcType must be 0 (F32), 1 (F16) or 30 (BF16)");
  const auto src_type = static_cast<quant::SourceType>(src_id);
  const size_t rows = SizeArg(info, 3, "rows");
  const size_t k = SizeArg(info, 4, "k");
  CheckShape(env, t, rows, k);
  const size_t element_bytes = src_type == quant::SRC_F32 ? 4 : 2;
  const uint8_t* src = BytesArg(info, 1, "src", rows * k * element_bytes, element_bytes);
  uint8_t* dst = BytesArg(info, 5, "dst", rows * quant::row_bytes(t, k), BlockAlignment(t));

  auto problem = std::make_shared<quant::RowProblem>();
  AsyncJob job;
  job.work = [&t, src, src_type, rows, k, dst, problem] {
    std::vector<float> scratch(k);
    *problem = quant::quantize_rows(t, src, src_type, rows, k, dst, scratch.data());
  };
  job.complete = [problem](Napi::Env env, const Kept&) -> Napi::Value {
    if (!problem->found) return env.Null();
    auto o = Napi::Object::New(env);
    o.Set("row", Napi::Number::New(env, static_cast<double>(problem->row)));
    o.Set("element", Napi::Number::New(env, static_cast<double>(problem->element)));
    o.Set("what", problem->what);
    return o;
  };
  job.keep_alive = {info[1], info[5]};
  job.name = "quantizeRowsAsync";
  return RunAsync(env, std::move(job));
}

Napi::Value DequantizeRowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const quant::TypeTraits& t = QuantTypeArg(info, 0);
  const size_t rows = SizeArg(info, 2, "rows");
  const size_t k = SizeArg(info, 3, "k");
  CheckShape(env, t, rows, k);
  if (rows * k > (size_t(1) << 28)) throw Napi::RangeError::New(env, "rows · k exceeds 2^28 output elements");
  const size_t row_bytes = quant::row_bytes(t, k);
  const uint8_t* src = BytesArg(info, 1, "src", rows * row_bytes, BlockAlignment(t));
  Napi::Float32Array out = Napi::Float32Array::New(env, rows * k);
  for (size_t r = 0; r < rows; r++) t.dequantize_row(src + r * row_bytes, out.Data() + r * k, k);
  return out;
}

}  // namespace

void RegisterQuant(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeRowsAsync", Napi::Function::New(env, Guarded<QuantizeRowsAsyncJs>, "quantizeRowsAsync"));
}

// The test addon's: the package itself never widens quantized rows in JS.
void RegisterQuantTests(Napi::Env env, Napi::Object exports) {
  exports.Set("dequantizeRows", Napi::Function::New(env, Guarded<DequantizeRowsJs>, "dequantizeRows"));
}

}  // namespace pg
