#include "variants.h"

#include "../cpu/features.h"

namespace pg {

const std::vector<Variant>& compiled_variants() {
  static const std::vector<Variant> variants = {
#if defined(__x86_64__) || defined(_M_X64)
      {"avx512", avx512::table,
       [] {
         const auto& f = cpu_features();
         return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
       },
       "AVX-512 F/BW/VL/DQ with FMA and F16C"},
      {"avx2", avx2::table,
       [] {
         const auto& f = cpu_features();
         return f.avx2 && f.fma && f.f16c;
       },
       "AVX2 with FMA and F16C"},
#endif
#if defined(__aarch64__)
      {"neon", neon::table, [] { return cpu_features().neon; }, "NEON (AArch64)"},
#endif
      {"scalar", scalar::table, [] { return true; }, "nothing"},
  };
  return variants;
}

const Variant& best_variant() {
  for (const auto& v : compiled_variants())
    if (v.supported()) return v;
  return compiled_variants().back();  // scalar, always supported
}

namespace {
const Variant* g_default = nullptr;
}

const Variant& default_variant() { return g_default ? *g_default : best_variant(); }
void set_default_variant(const Variant& v) { g_default = &v; }

const Variant* find_variant(const std::string& name, std::string& error) {
  std::string known;
  for (const auto& v : compiled_variants()) {
    if (name == v.name) {
      if (v.supported()) return &v;
      error = std::string("SIMD variant '") + name + "' needs " + v.requirements +
              ", which this CPU does not have";
      return nullptr;
    }
    known += known.empty() ? v.name : std::string(", ") + v.name;
  }
  error = "unknown SIMD variant '" + name + "' (this build has: " + known + ")";
  return nullptr;
}

}  // namespace pg
