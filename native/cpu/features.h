// What the CPU (and the OS, for wide register state) lets us run.
#pragma once

namespace pg {

struct CpuFeatures {
  // x86-64
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512bf16 = false;
  bool avx512fp16 = false;
  bool avx512vnni = false;
  // arm64
  bool neon = false;
  bool asimdhp = false;  // half-precision arithmetic
  bool bf16 = false;
  bool dotprod = false;  // SDOT/UDOT (vdotq_s32)
};

// Read once (cpuid / hwcap), cached afterwards.
const CpuFeatures& cpu_features();

}  // namespace pg
