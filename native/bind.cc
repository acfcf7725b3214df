#include "bind.h"

#include <cmath>
#include <cstdint>

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

}  // namespace pg
