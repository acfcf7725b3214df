// The N-API surface: argument checks, conversions and errors only. Computation lives in
// native/kernels and native/model.
#include <napi.h>

#include "cpu/features.h"
#include "bind.h"
#include "kernels/variants.h"

namespace pg {
namespace {

Napi::Value CpuFeaturesJs(const Napi::CallbackInfo& info) {
  const auto& f = cpu_features();
  auto o = Napi::Object::New(info.Env());
  auto set = [&](const char* k, bool v) { o.Set(k, Napi::Boolean::New(info.Env(), v)); };
#if defined(__x86_64__) || defined(_M_X64)
  o.Set("arch", "x64");
#elif defined(__aarch64__)
  o.Set("arch", "arm64");
#else
  o.Set("arch", "other");
#endif
  set("sse42", f.sse42);
  set("avx", f.avx);
  set("avx2", f.avx2);
  set("fma", f.fma);
  set("f16c", f.f16c);
  set("avx512f", f.avx512f);
  set("avx512bw", f.avx512bw);
  set("avx512vl", f.avx512vl);
  set("avx512dq", f.avx512dq);
  set("avx512bf16", f.avx512bf16);
  set("avx512fp16", f.avx512fp16);
  set("avx512vnni", f.avx512vnni);
  set("neon", f.neon);
  set("asimdhp", f.asimdhp);
  set("bf16", f.bf16);
  return o;
}

Napi::Value SimdVariantJs(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), default_variant().name);
}

Napi::Value SimdVariantsJs(const Napi::CallbackInfo& info) {
  const auto& all = compiled_variants();
  auto arr = Napi::Array::New(info.Env(), all.size());
  for (size_t i = 0; i < all.size(); i++) {
    auto o = Napi::Object::New(info.Env());
    o.Set("name", all[i].name);
    o.Set("supported", Napi::Boolean::New(info.Env(), all[i].supported()));
    o.Set("requires", all[i].requirements);
    arr.Set(static_cast<uint32_t>(i), o);
  }
  return arr;
}

Napi::Value SetSimdVariantJs(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(info.Env(), "setSimdVariant(name): name must be a string");
  std::string error;
  const Variant* v = find_variant(info[0].As<Napi::String>().Utf8Value(), error);
  if (!v) throw Napi::Error::New(info.Env(), error);
  set_default_variant(*v);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeaturesJs));
  exports.Set("simdVariant", Napi::Function::New(env, SimdVariantJs));
  exports.Set("simdVariants", Napi::Function::New(env, SimdVariantsJs));
  exports.Set("setSimdVariant", Napi::Function::New(env, SetSimdVariantJs));
  RegisterMatmul(env, exports);
  RegisterOps(env, exports);
  RegisterImage(env, exports);
  RegisterModel(env, exports);
  RegisterQuant(env, exports);
  return exports;
}

}  // namespace
}  // namespace pg

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return pg::Init(env, exports); }

NODE_API_MODULE(paligemma, InitAddon)
