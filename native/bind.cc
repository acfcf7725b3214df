#include "bind.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/variants.h"

namespace pg {

const KernelTable* KernelsArg(const Napi::CallbackInfo& info, size_t index) {
  if (index >= info.Length() || info[index].IsUndefined() || info[index].IsNull()) return default_variant().table();
  if (!info[index].IsString()) throw Napi::TypeError::New(info.Env(), "simd variant must be a string");
  std::string error;
  const Variant* v = find_variant(info[index].As<Napi::String>().Utf8Value(), error);
  if (!v) throw Napi::Error::New(info.Env(), error);
  return v->table();
}

ThreadPool* SharedPool() {
  static ThreadPool* pool = new ThreadPool(0);  // lives as long as the process
  return pool;
}

namespace {
template <typename T> struct ArrayKind;
template <> struct ArrayKind<float> { static constexpr napi_typedarray_type type = napi_float32_array; static constexpr const char* name = "Float32Array"; };
template <> struct ArrayKind<int32_t> { static constexpr napi_typedarray_type type = napi_int32_array; static constexpr const char* name = "Int32Array"; };
template <> struct ArrayKind<uint16_t> { static constexpr napi_typedarray_type type = napi_uint16_array; static constexpr const char* name = "Uint16Array"; };
template <> struct ArrayKind<uint8_t> { static constexpr napi_typedarray_type type = napi_uint8_array; static constexpr const char* name = "Uint8Array"; };
}  // namespace

template <typename T>
T* TypedArrayArg(const Napi::CallbackInfo& info, size_t index, const char* what, size_t min_elements) {
  Napi::Env env = info.Env();
  if (index >= info.Length() || !info[index].IsTypedArray())
    throw Napi::TypeError::New(env, std::string(what) + " must be a " + ArrayKind<T>::name);
  auto ta = info[index].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != ArrayKind<T>::type)
    throw Napi::TypeError::New(env, std::string(what) + " must be a " + ArrayKind<T>::name);
  if (ta.ElementLength() < min_elements)
    throw Napi::RangeError::New(env, std::string(what) + " has " + std::to_string(ta.ElementLength()) +
                                         " elements, needs at least " + std::to_string(min_elements));
  auto bytes = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return reinterpret_cast<T*>(bytes);
}

template float* TypedArrayArg<float>(const Napi::CallbackInfo&, size_t, const char*, size_t);
template int32_t* TypedArrayArg<int32_t>(const Napi::CallbackInfo&, size_t, const char*, size_t);
template uint16_t* TypedArrayArg<uint16_t>(const Napi::CallbackInfo&, size_t, const char*, size_t);
template uint8_t* TypedArrayArg<uint8_t>(const Napi::CallbackInfo&, size_t, const char*, size_t);

size_t SizeArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  if (index >= info.Length() || !info[index].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  const double d = info[index].As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > 9007199254740991.0 || d != std::floor(d))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be a non-negative integer");
  return static_cast<size_t>(d);
}

size_t PositiveSizeArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const size_t v = SizeArg(info, index, what);
  if (v == 0) throw Napi::RangeError::New(info.Env(), std::string(what) + " must be at least 1");
  return v;
}

int PositiveIntArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const size_t v = PositiveSizeArg(info, index, what);
  if (v > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " is too large");
  return static_cast<int>(v);
}

size_t CheckedMul(Napi::Env env, size_t a, size_t b, const std::string& what) {
  constexpr size_t kMaxSafeInteger = (size_t(1) << 53) - 1;
  if (a != 0 && b > kMaxSafeInteger / a) throw Napi::RangeError::New(env, what + " is too large");
  return a * b;
}

namespace {
std::string LowerName(const WeightType& t) {
  std::string name = t.name;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}
}  // namespace

const WeightType& WeightTypeArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  const std::string given = index < info.Length() && info[index].IsString() ? info[index].As<Napi::String>().Utf8Value() : "";
  std::string names;
  for (size_t i = 0; i < kWeightTypeCount; i++) {
    if (LowerName(kWeightTypes[i]) == given) return kWeightTypes[i];
    names += (i == 0 ? "'" : i + 1 == kWeightTypeCount ? " or '" : ", '") + LowerName(kWeightTypes[i]) + "'";
  }
  throw Napi::TypeError::New(info.Env(), std::string(what) + " must be " + names +
                                             (given.empty() ? std::string() : ", got '" + given + "'"));
}

const void* WeightArrayArg(const Napi::CallbackInfo& info, size_t index, const WeightType& t, const char* what,
                           size_t* elements) {
  const void* data;
  if (t.block == 1 && t.block_bytes == 4) {
    data = TypedArrayArg<float>(info, index, what, 0);
  } else if (t.block == 1 && t.block_bytes == 2) {
    data = TypedArrayArg<uint16_t>(info, index, what, 0);
  } else {
    data = TypedArrayArg<uint8_t>(info, index, what, 0);
  }
  const auto array = info[index].As<Napi::TypedArray>();
  if (array.ByteLength() % t.block_bytes != 0)
    throw Napi::RangeError::New(info.Env(), std::string(what) + " is not whole " + t.name + " blocks");
  *elements = array.ByteLength() / t.block_bytes * t.block;
  return data;
}

Napi::Float32Array NewOutput(Napi::Env env, size_t elements) {
  constexpr size_t kMaxOutputElements = size_t(1) << 28;  // 1 GiB of floats
  if (elements > kMaxOutputElements)
    throw Napi::RangeError::New(env, "output of " + std::to_string(elements) + " elements exceeds the limit of " +
                                         std::to_string(kMaxOutputElements));
  return Napi::Float32Array::New(env, elements);  // zero-filled
}

const float* BiasArg(const Napi::CallbackInfo& info, size_t index, size_t count) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) return nullptr;
  const float* p = TypedArrayArg<float>(info, index, "bias", 0);
  const size_t length = info[index].As<Napi::TypedArray>().ElementLength();
  if (length != count)
    throw Napi::RangeError::New(info.Env(), "bias has " + std::to_string(length) + " elements, expected " +
                                                std::to_string(count));
  return p;
}

}  // namespace pg
