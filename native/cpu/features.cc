#include "features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace pg {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
// XCR0: which register states the OS saves on context switch. cpuid alone says what the
// silicon has; without OS support, touching ymm/zmm registers faults.
unsigned long long read_xcr0() {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & bit_OSXSAVE;
  f.sse42 = c & bit_SSE4_2;
  const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;        // xmm + ymm
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;   // + opmask, zmm0-15 high, zmm16-31
  f.avx = os_avx && (c & bit_AVX);
  f.fma = f.avx && (c & bit_FMA);
  f.f16c = f.avx && (c & bit_F16C);
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
    f.avx2 = f.avx && (b & bit_AVX2);
    if (os_avx512) {
      f.avx512f = b & bit_AVX512F;
      f.avx512dq = f.avx512f && (b & bit_AVX512DQ);
      f.avx512bw = f.avx512f && (b & bit_AVX512BW);
      f.avx512vl = f.avx512f && (b & bit_AVX512VL);
      f.avx512vnni = f.avx512f && (c & bit_AVX512VNNI);
      f.avx512fp16 = f.avx512f && (d & (1u << 23));
    }
  }
  if (f.avx512f && __get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx512bf16 = a & (1u << 5);
  return f;
}
#elif defined(__aarch64__)
CpuFeatures detect() {
  CpuFeatures f;
  f.neon = true;  // mandatory on AArch64
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  f.asimdhp = hw & HWCAP_ASIMDHP;
#ifdef HWCAP_ASIMDDP
  f.dotprod = hw & HWCAP_ASIMDDP;
#endif
#ifdef HWCAP2_BF16
  f.bf16 = hw2 & HWCAP2_BF16;
#else
  (void)hw2;
#endif
#endif
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace pg
