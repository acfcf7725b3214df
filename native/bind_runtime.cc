// The runtime functions both addons export: what the CPU supports and which SIMD variant the
// kernels use.
//
//   cpuFeatures() -> { arch, avx2, … }    simdVariant() -> name    simdVariants() -> [{ name, supported, requires }]
//   setSimdVariant(name)                  the process default (PALIGEMMA_SIMD)
#include "bind.h"
#include "cpu/features.h"
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

}  // namespace

void RegisterRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuFeatures", Napi::Function::New(env, Guarded<CpuFeaturesJs>, "cpuFeatures"));
  exports.Set("simdVariant", Napi::Function::New(env, Guarded<SimdVariantJs>, "simdVariant"));
  exports.Set("simdVariants", Napi::Function::New(env, Guarded<SimdVariantsJs>, "simdVariants"));
  exports.Set("setSimdVariant", Napi::Function::New(env, Guarded<SetSimdVariantJs>, "setSimdVariant"));
}

}  // namespace pg
